//! Pipeline configuration: every error reported at once, each with file:line:col.

use std::path::Path;

#[test]
fn every_error_is_reported_with_its_location() {
    let text = r#"schedule = "not a cron"
timezone = "Mars/Olympus"

[[source]]
name = "a"
canonical = "registratons"
path = "x.csv"

[[source]]
name = "b"
canonical = "registrations"
path = "r.csv"
mode = "sometimes"
[source.columns]
persn_id = "Client ID"

[[source]]
name = "c"
canonical = "chis"
path = "c.csv"
colour = "blue"

[notify]
email = ["nobody"]
on = ["sometimes"]
"#;
    let errs = earlystart::config::parse(Path::new("."), Path::new("pipelines/bad.toml"), text)
        .unwrap_err();
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let has = |prefix: &str, needle: &str| {
        shown
            .iter()
            .any(|e| e.starts_with(prefix) && e.contains(needle))
    };
    assert!(has("pipelines/bad.toml:1:12:", "cron"), "{shown:#?}");
    assert!(has("pipelines/bad.toml:2:12:", "time zone"), "{shown:#?}");
    assert!(
        has(
            "pipelines/bad.toml:6:13:",
            "unknown canonical table \"registratons\""
        ),
        "{shown:#?}"
    );
    assert!(has("pipelines/bad.toml:13:8:", "mode"), "{shown:#?}");
    assert!(has("pipelines/bad.toml:15:1:", "persn_id"), "{shown:#?}");
    assert!(has("pipelines/bad.toml:21:1:", "colour"), "{shown:#?}");
    assert!(
        has("pipelines/bad.toml:24:10:", "not an address"),
        "{shown:#?}"
    );
    assert!(
        has("pipelines/bad.toml:25:7:", "notify.on \"sometimes\""),
        "{shown:#?}"
    );
    assert_eq!(errs.len(), 8, "{shown:#?}");
}

#[test]
fn shipped_pipelines_are_valid() {
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in earlystart::config::list(project).unwrap() {
        earlystart::config::load(project, &name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
}

#[test]
fn the_optional_linkage_rule_is_off_unless_turned_on() {
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = Path::new("pipelines/p.toml");
    let source = "[[source]]\nname = \"r\"\ncanonical = \"registrations\"\npath = \"r.csv\"\n";
    let off = earlystart::config::parse(project, file, source).unwrap();
    assert!(!off.linkage.demo_name);
    let on = earlystart::config::parse(
        project,
        file,
        &format!("[linkage]\ndemo_name = true\n\n{source}"),
    )
    .unwrap();
    assert!(on.linkage.demo_name);
    // A misspelt rule is an error with its place, not silently the default.
    let errs = earlystart::config::parse(
        project,
        file,
        &format!("[linkage]\ndemo_nam = true\n\n{source}"),
    )
    .unwrap_err();
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert!(
        shown
            .iter()
            .any(|e| e.starts_with("pipelines/p.toml:") && e.contains("demo_nam")),
        "{shown:#?}"
    );
}

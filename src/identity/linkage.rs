//! Record linkage (extracts.md §11.3–11.4): records are nodes, a firing match rule adds an
//! edge, and each connected component is one child.
//!
//! Guards against false merges: a DEMO edge is not added between records with different
//! NHS or UPN keys; a demographic key shared by two distinct persons within one source
//! (twins) is ambiguous and unused (W009); a component that still holds two NHS keys is
//! split back into its NHS-keyed parts.
//!
//! DEMO_NAME (surname, first given name and date of birth, no postcode) is an optional
//! fifth rule beyond the contract's four, for families who moved between two extracts; it
//! is off unless the pipeline's `[linkage] demo_name = true`, and carries the same guards.

use std::collections::{BTreeMap, BTreeSet};

use super::Pseudonymiser;

/// Match rules, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchRule {
    /// Same NHS number.
    Nhs,
    /// Same UPN.
    Upn,
    /// Same local id in a shared namespace.
    LaId,
    /// Same surname, date of birth and postcode.
    Demo,
    /// Same surname, first given name and date of birth (optional rule).
    DemoName,
}

impl MatchRule {
    /// Name written to `person_link.match_rule`.
    pub fn name(self) -> &'static str {
        match self {
            MatchRule::Nhs => "NHS",
            MatchRule::Upn => "UPN",
            MatchRule::LaId => "LA_ID",
            MatchRule::Demo => "DEMO",
            MatchRule::DemoName => "DEMO_NAME",
        }
    }

    /// The rule's confidence (`linkage.toml` defaults).
    pub fn confidence(self) -> f64 {
        match self {
            MatchRule::Demo => 0.90,
            MatchRule::DemoName => 0.85,
            _ => 1.0,
        }
    }
}

/// One child record offered for linkage; all keys are already pseudonymised.
#[derive(Debug, Clone, Default)]
pub struct LinkRecord {
    /// Source name (`cc_registrations`, `chis`, …).
    pub source: String,
    /// The record's own key in that source (unique within the source).
    pub source_person_key: String,
    /// `key_nhs`.
    pub nhs: Option<String>,
    /// `key_upn`.
    pub upn: Option<String>,
    /// `key_local` in a namespace shared across sources.
    pub local: Option<String>,
    /// `key_demo`.
    pub demo: Option<String>,
    /// `key_demo_name`, used only when the DEMO_NAME rule is on.
    pub demo_name: Option<String>,
}

/// Which optional rules apply (the pipeline's `[linkage]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkOptions {
    /// DEMO_NAME: surname, first given name and date of birth, without the postcode.
    pub demo_name: bool,
}

/// One row of `person_link`.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// Source name.
    pub source: String,
    /// The record's key in its source.
    pub source_person_key: String,
    /// The linked child.
    pub child_key: String,
    /// Strongest rule linking this record to another, or None when unlinked.
    pub match_rule: Option<MatchRule>,
}

/// Linkage quality, reported every run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkStats {
    /// Records linked.
    pub records: usize,
    /// Distinct children.
    pub children: usize,
    /// Records linked to at least one other record, by rule.
    pub by_rule: BTreeMap<&'static str, usize>,
    /// Demographic keys unused because two persons in one source share them (W009).
    pub ambiguous_demo_keys: usize,
    /// Components split because they held two NHS keys.
    pub split_components: usize,
    /// Children's centre registrations of children (filled in by the pipeline).
    pub registered_children: usize,
    /// Of those, the ones linked to a child health register record.
    pub registered_linked_to_chis: usize,
    /// Of those, the ones linked to a social care record (CIN census, 903, side file).
    pub registered_linked_to_social_care: usize,
    /// Of those, the ones linked to an EYFS Profile result.
    pub registered_linked_to_eyfsp: usize,
    /// Pairwise precision and recall against the generator's `identities.csv`, when the
    /// extracts are synthetic and carry it.
    pub quality: Option<super::quality::Quality>,
    /// The same, over social care and education records and the child health register.
    pub quality_social: Option<super::quality::Quality>,
}

/// Reads one key of a record (the rule tables below).
type KeyOf = fn(&LinkRecord) -> Option<&String>;

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
        }
    }
    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[ra.max(rb)] = ra.min(rb);
        }
    }
}

/// Links records into children. Deterministic: the same records give the same set of links
/// whatever their order (the links come in no particular order).
pub fn link(
    records: &[LinkRecord],
    p: &Pseudonymiser,
    options: LinkOptions,
) -> (Vec<Link>, LinkStats) {
    let n = records.len();
    let mut uf = UnionFind::new(n);
    let mut strongest: Vec<Option<MatchRule>> = vec![None; n];
    let mut stats = LinkStats {
        records: n,
        ..Default::default()
    };

    // Exact-key rules: join every record carrying the same key.
    let exact: [(MatchRule, KeyOf); 3] = [
        (MatchRule::Nhs, |r| r.nhs.as_ref()),
        (MatchRule::Upn, |r| r.upn.as_ref()),
        (MatchRule::LaId, |r| r.local.as_ref()),
    ];
    for (rule, key) in exact {
        let mut groups: foldhash::HashMap<&String, Vec<usize>> = Default::default();
        for (i, r) in records.iter().enumerate() {
            if let Some(k) = key(r) {
                groups.entry(k).or_default().push(i);
            }
        }
        for members in groups.values().filter(|m| m.len() > 1) {
            for &i in members {
                uf.union(members[0], i);
                strongest[i] = Some(strongest[i].map_or(rule, |s| s.min(rule)));
            }
        }
    }

    // DEMO (and DEMO_NAME when on): drop keys shared by distinct persons within one source
    // (twins), then add edges only between records whose NHS and UPN keys do not conflict.
    let demographic: [(MatchRule, KeyOf); 2] = [
        (MatchRule::Demo, |r| r.demo.as_ref()),
        (MatchRule::DemoName, |r| r.demo_name.as_ref()),
    ];
    for (rule, key) in demographic {
        if rule == MatchRule::DemoName && !options.demo_name {
            continue;
        }
        stats.ambiguous_demo_keys += demographic_edges(records, rule, key, &mut uf, &mut strongest);
    }

    // Components; split any that hold two NHS keys back into NHS-keyed parts.
    let mut components: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        components.entry(uf.find(i)).or_default().push(i);
    }
    let mut final_groups: Vec<Vec<usize>> = Vec::new();
    for members in components.into_values() {
        let nhs: BTreeSet<&String> = members
            .iter()
            .filter_map(|&i| records[i].nhs.as_ref())
            .collect();
        if nhs.len() <= 1 {
            final_groups.push(members);
            continue;
        }
        stats.split_components += 1;
        let mut parts: BTreeMap<Option<&String>, Vec<usize>> = BTreeMap::new();
        for &i in &members {
            parts.entry(records[i].nhs.as_ref()).or_default().push(i);
        }
        // Records without an NHS key cannot be placed safely: each stands alone.
        for (k, part) in parts {
            match k {
                Some(_) => final_groups.push(part),
                None => final_groups.extend(part.into_iter().map(|i| vec![i])),
            }
        }
    }

    let mut links = Vec::with_capacity(n);
    for group in &final_groups {
        let smallest = |f: KeyOf| group.iter().filter_map(|&i| f(&records[i])).min();
        let representative = smallest(|r| r.nhs.as_ref())
            .or_else(|| smallest(|r| r.upn.as_ref()))
            .or_else(|| smallest(|r| r.local.as_ref()))
            .or_else(|| smallest(|r| r.demo.as_ref()))
            .cloned()
            .unwrap_or_else(|| {
                format!(
                    "{}:{}",
                    records[group[0]].source, records[group[0]].source_person_key
                )
            });
        let child_key = p.child(&representative);
        for &i in group {
            let rule = if group.len() > 1 { strongest[i] } else { None };
            if let Some(r) = rule {
                *stats.by_rule.entry(r.name()).or_default() += 1;
            }
            links.push(Link {
                source: records[i].source.clone(),
                source_person_key: records[i].source_person_key.clone(),
                child_key: child_key.clone(),
                match_rule: rule,
            });
        }
    }
    stats.children = final_groups.len();
    (links, stats)
}

/// Adds the edges of one demographic rule; returns how many of its keys were ambiguous
/// (shared by two distinct persons of one source) and so unused.
fn demographic_edges(
    records: &[LinkRecord],
    rule: MatchRule,
    key: KeyOf,
    uf: &mut UnionFind,
    strongest: &mut [Option<MatchRule>],
) -> usize {
    let mut by_source: foldhash::HashMap<(&str, &String), BTreeSet<&str>> = Default::default();
    for r in records {
        if let Some(d) = key(r) {
            by_source
                .entry((&r.source, d))
                .or_default()
                .insert(&r.source_person_key);
        }
    }
    let ambiguous: BTreeSet<&String> = by_source
        .iter()
        .filter(|(_, persons)| persons.len() > 1)
        .map(|((_, d), _)| *d)
        .collect();
    let mut groups: foldhash::HashMap<&String, Vec<usize>> = Default::default();
    for (i, r) in records.iter().enumerate() {
        if let Some(d) = key(r).filter(|d| !ambiguous.contains(d)) {
            groups.entry(d).or_default().push(i);
        }
    }
    let conflict =
        |x: &Option<String>, y: &Option<String>| matches!((x, y), (Some(x), Some(y)) if x != y);
    for members in groups.values().filter(|m| m.len() > 1) {
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                let (ra, rb) = (&records[a], &records[b]);
                if conflict(&ra.nhs, &rb.nhs) || conflict(&ra.upn, &rb.upn) {
                    continue;
                }
                uf.union(a, b);
                for i in [a, b] {
                    strongest[i] = Some(strongest[i].map_or(rule, |s| s.min(rule)));
                }
            }
        }
    }
    ambiguous.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(source: &str, key: &str, nhs: Option<&str>, demo: Option<&str>) -> LinkRecord {
        LinkRecord {
            source: source.into(),
            source_person_key: key.into(),
            nhs: nhs.map(Into::into),
            demo: demo.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn nhs_and_demo_edges() {
        let p = Pseudonymiser::demo();
        let records = vec![
            rec("cc", "a", Some("n1"), Some("d1")),
            rec("chis", "n1", Some("n1"), Some("d1")),
            rec("cc", "b", None, Some("d2")),
            rec("chis", "n2", Some("n2"), Some("d2")),
        ];
        let (links, stats) = link(&records, &p, LinkOptions::default());
        let key = |s: &str, k: &str| {
            links
                .iter()
                .find(|l| l.source == s && l.source_person_key == k)
                .unwrap()
                .clone()
        };
        assert_eq!(key("cc", "a").child_key, key("chis", "n1").child_key);
        assert_eq!(key("cc", "a").match_rule, Some(MatchRule::Nhs));
        assert_eq!(key("cc", "b").child_key, key("chis", "n2").child_key);
        assert_eq!(key("cc", "b").match_rule, Some(MatchRule::Demo));
        assert_eq!(stats.children, 2);
    }

    #[test]
    fn twins_are_not_merged() {
        let p = Pseudonymiser::demo();
        // Twins: same surname, DOB and postcode in one source, so the demo key is ambiguous.
        let records = vec![
            rec("cc", "t1", None, Some("d")),
            rec("cc", "t2", None, Some("d")),
            rec("chis", "n9", Some("n9"), Some("d")),
        ];
        let (links, stats) = link(&records, &p, LinkOptions::default());
        assert_eq!(stats.ambiguous_demo_keys, 1);
        assert_eq!(stats.children, 3);
        assert!(links.iter().all(|l| l.match_rule.is_none()));
    }

    #[test]
    fn conflicting_nhs_numbers_block_demo_edges() {
        let p = Pseudonymiser::demo();
        let records = vec![
            rec("cc", "a", Some("n1"), Some("d")),
            rec("chis", "n2", Some("n2"), Some("d")),
        ];
        let (_, stats) = link(&records, &p, LinkOptions::default());
        assert_eq!(stats.children, 2);
    }

    /// DEMO_NAME: a family that moved between the registration and the side file has two
    /// demographic keys (different postcodes) but one name-and-birth key. Off by default;
    /// when on it links them, keeps the guards (twins with the same name and birth date in
    /// one source stay apart; different NHS numbers block the edge) and is reported.
    #[test]
    fn demo_name_links_moved_families_only_when_on() {
        let p = Pseudonymiser::demo();
        let moved =
            |source: &str, key: &str, demo: &str, name: &str, nhs: Option<&str>| LinkRecord {
                source: source.into(),
                source_person_key: key.into(),
                nhs: nhs.map(Into::into),
                demo: Some(demo.into()),
                demo_name: Some(name.into()),
                ..Default::default()
            };
        let records = vec![
            moved("cc", "a", "d-old-address", "smith-amy-2022", None),
            moved("side", "la1", "d-new-address", "smith-amy-2022", None),
            // Same name and birth date twice in one source: ambiguous, unused.
            moved("cc", "t1", "d-t", "jones-sam-2021", None),
            moved("cc", "t2", "d-t2", "jones-sam-2021", None),
            moved("side", "la9", "d-t3", "jones-sam-2021", None),
            // Same name and birth date, different NHS numbers: two children.
            moved("chis", "n1", "d-x", "khan-ali-2020", Some("n1")),
            moved("side", "la5", "d-y", "khan-ali-2020", Some("n2")),
        ];
        let child = |links: &[Link], s: &str, k: &str| {
            links
                .iter()
                .find(|l| l.source == s && l.source_person_key == k)
                .unwrap()
                .clone()
        };
        let (off, off_stats) = link(&records, &p, LinkOptions::default());
        assert_ne!(
            child(&off, "cc", "a").child_key,
            child(&off, "side", "la1").child_key
        );
        assert_eq!(off_stats.children, 7);
        let (on, on_stats) = link(&records, &p, LinkOptions { demo_name: true });
        assert_eq!(
            child(&on, "cc", "a").child_key,
            child(&on, "side", "la1").child_key
        );
        assert_eq!(child(&on, "cc", "a").match_rule, Some(MatchRule::DemoName));
        assert_eq!(MatchRule::DemoName.name(), "DEMO_NAME");
        assert_eq!(on_stats.by_rule.get("DEMO_NAME"), Some(&2));
        assert_eq!(on_stats.ambiguous_demo_keys, 1);
        assert_ne!(
            child(&on, "chis", "n1").child_key,
            child(&on, "side", "la5").child_key
        );
        assert_eq!(on_stats.children, 6);
    }

    /// Social care and education: the side file carries the NHS number for a CIN child, the
    /// census and 903 share the LA child id, the pupil links by UPN; twins in the side file
    /// (same surname, DOB and postcode, different LA ids) stay apart, and a pupil whose UPN
    /// differs from the census child's is not joined by a demographic key.
    #[test]
    fn social_care_records_join_the_same_child() {
        let p = Pseudonymiser::demo();
        let sc =
            |source: &str, la: &str, nhs: Option<&str>, upn: Option<&str>, demo: Option<&str>| {
                LinkRecord {
                    source: source.into(),
                    source_person_key: la.into(),
                    local: Some(la.into()),
                    nhs: nhs.map(Into::into),
                    upn: upn.map(Into::into),
                    demo: demo.map(Into::into),
                    demo_name: None,
                }
            };
        let records = vec![
            rec("chis", "n1", Some("n1"), None),
            sc(
                "sc_person_identifiers",
                "la1",
                Some("n1"),
                Some("u1"),
                Some("d1"),
            ),
            sc("cin_census", "la1", None, Some("u1"), None),
            sc("ssda903", "la1", None, None, None),
            LinkRecord {
                source: "eyfsp".into(),
                source_person_key: "u1".into(),
                upn: Some("u1".into()),
                ..Default::default()
            },
            // Twins in the side file.
            sc("sc_person_identifiers", "la7", None, None, Some("twin")),
            sc("sc_person_identifiers", "la8", None, None, Some("twin")),
            rec("chis", "n7", Some("n7"), Some("twin")),
            // A pupil with another UPN but the same demographic key as the side-file record.
            LinkRecord {
                source: "eyfsp".into(),
                source_person_key: "u9".into(),
                upn: Some("u9".into()),
                demo: Some("d1".into()),
                ..Default::default()
            },
        ];
        let (links, stats) = link(&records, &p, LinkOptions::default());
        let child = |s: &str, k: &str| {
            links
                .iter()
                .find(|l| l.source == s && l.source_person_key == k)
                .unwrap()
                .child_key
                .clone()
        };
        let one = child("chis", "n1");
        for (s, k) in [
            ("sc_person_identifiers", "la1"),
            ("cin_census", "la1"),
            ("ssda903", "la1"),
            ("eyfsp", "u1"),
        ] {
            assert_eq!(child(s, k), one, "{s} {k}");
        }
        assert_ne!(
            child("eyfsp", "u9"),
            one,
            "different UPNs block the demographic edge"
        );
        assert_ne!(
            child("sc_person_identifiers", "la7"),
            child("sc_person_identifiers", "la8")
        );
        assert_eq!(stats.ambiguous_demo_keys, 1);
        // n1's component, u9, la7, la8, n7.
        assert_eq!(stats.children, 5);
    }
}

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

use std::collections::BTreeMap;

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

/// A string of one linkage run, stored once in its [`Strings`]: records carry 4-byte
/// symbols, not owned strings (a region's million records hold some four million
/// 64-character pseudonyms, many of them the same NHS key in several sources).
pub type Sym = lasso::Spur;

/// The interner of one linkage run.
pub type Strings = lasso::Rodeo<Sym, foldhash::fast::RandomState>;

/// An empty interner.
pub fn strings() -> Strings {
    Strings::with_hasher(Default::default())
}

/// One child record offered for linkage; all keys are already pseudonymised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkRecord {
    /// Source name (`cc_registrations`, `chis`, …).
    pub source: Sym,
    /// The record's own key in that source (unique within the source).
    pub source_person_key: Sym,
    /// `key_nhs`.
    pub nhs: Option<Sym>,
    /// `key_upn`.
    pub upn: Option<Sym>,
    /// `key_local` in a namespace shared across sources.
    pub local: Option<Sym>,
    /// `key_demo`.
    pub demo: Option<Sym>,
    /// `key_demo_name`, used only when the DEMO_NAME rule is on.
    pub demo_name: Option<Sym>,
}

impl LinkRecord {
    /// A record of `source` keyed `key` in it, with no match keys yet.
    pub fn new(source: Sym, key: Sym) -> Self {
        Self {
            source,
            source_person_key: key,
            nhs: None,
            upn: None,
            local: None,
            demo: None,
            demo_name: None,
        }
    }
}

/// Which optional rules apply (the pipeline's `[linkage]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkOptions {
    /// DEMO_NAME: surname, first given name and date of birth, without the postcode.
    pub demo_name: bool,
}

/// The outcome of linkage, by record index: the rows of `person_link`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Linkage {
    /// Each record's child, an index into `child_keys`.
    pub child_of: Vec<u32>,
    /// Each record's strongest rule linking it to another record (None when it stands
    /// alone).
    pub rule_of: Vec<Option<MatchRule>>,
    /// The children's keys.
    pub child_keys: Vec<String>,
}

impl Linkage {
    /// The child key of record `i`.
    pub fn child_key(&self, i: usize) -> &str {
        &self.child_keys[self.child_of[i] as usize]
    }
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
type KeyOf = fn(&LinkRecord) -> Option<Sym>;

struct UnionFind {
    parent: Vec<u32>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
        }
    }
    fn find(&mut self, x: usize) -> usize {
        let mut x = x as u32;
        while self.parent[x as usize] != x {
            self.parent[x as usize] = self.parent[self.parent[x as usize] as usize];
            x = self.parent[x as usize];
        }
        x as usize
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[ra.max(rb)] = ra.min(rb) as u32;
        }
    }
}

/// Links records into children. Deterministic: the same records give the same children
/// and rules whatever their order.
pub fn link(
    records: &[LinkRecord],
    strings: &Strings,
    p: &Pseudonymiser,
    options: LinkOptions,
) -> (Linkage, LinkStats) {
    let n = records.len();
    assert!(
        n < u32::MAX as usize,
        "linkage holds record numbers in 32 bits"
    );
    let mut uf = UnionFind::new(n);
    let mut strongest: Vec<Option<MatchRule>> = vec![None; n];
    let mut stats = LinkStats {
        records: n,
        ..Default::default()
    };

    // Exact-key rules: join every record carrying the same key to the first one seen.
    let exact: [(MatchRule, KeyOf); 3] = [
        (MatchRule::Nhs, |r| r.nhs),
        (MatchRule::Upn, |r| r.upn),
        (MatchRule::LaId, |r| r.local),
    ];
    for (rule, key) in exact {
        let mut first: foldhash::HashMap<Sym, u32> = Default::default();
        for (i, r) in records.iter().enumerate() {
            let Some(k) = key(r) else { continue };
            let f = *first.entry(k).or_insert(i as u32) as usize;
            if f != i {
                uf.union(f, i);
                for j in [f, i] {
                    strongest[j] = Some(strongest[j].map_or(rule, |s| s.min(rule)));
                }
            }
        }
    }

    // DEMO (and DEMO_NAME when on): drop keys shared by distinct persons within one source
    // (twins), then add edges only between records whose NHS and UPN keys do not conflict.
    let demographic: [(MatchRule, KeyOf); 2] = [
        (MatchRule::Demo, |r| r.demo),
        (MatchRule::DemoName, |r| r.demo_name),
    ];
    for (rule, key) in demographic {
        if rule == MatchRule::DemoName && !options.demo_name {
            continue;
        }
        stats.ambiguous_demo_keys += demographic_edges(records, rule, key, &mut uf, &mut strongest);
    }

    // Components as runs of record numbers sorted by root (no vector per component); any
    // that hold two NHS keys are split back into their NHS-keyed parts.
    let roots: Vec<u32> = (0..n).map(|i| uf.find(i) as u32).collect();
    drop(uf);
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_unstable_by_key(|&i| (roots[i as usize], i));
    let mut linkage = Linkage {
        child_of: vec![0; n],
        rule_of: vec![None; n],
        child_keys: Vec::new(),
    };
    let mut child = |group: &[u32], stats: &mut LinkStats| {
        let smallest = |f: KeyOf| {
            group
                .iter()
                .filter_map(|&i| f(&records[i as usize]))
                .map(|k| strings.resolve(&k))
                .min()
        };
        let representative = smallest(|r| r.nhs)
            .or_else(|| smallest(|r| r.upn))
            .or_else(|| smallest(|r| r.local))
            .or_else(|| smallest(|r| r.demo))
            .map(str::to_string)
            .unwrap_or_else(|| {
                let r = &records[group[0] as usize];
                format!(
                    "{}:{}",
                    strings.resolve(&r.source),
                    strings.resolve(&r.source_person_key)
                )
            });
        let id = linkage.child_keys.len() as u32;
        linkage.child_keys.push(p.child(&representative));
        for &i in group {
            let rule = if group.len() > 1 {
                strongest[i as usize]
            } else {
                None
            };
            if let Some(r) = rule {
                *stats.by_rule.entry(r.name()).or_default() += 1;
            }
            linkage.child_of[i as usize] = id;
            linkage.rule_of[i as usize] = rule;
        }
    };
    for component in order.chunk_by(|a, b| roots[*a as usize] == roots[*b as usize]) {
        let mut nhs = component.iter().filter_map(|&i| records[i as usize].nhs);
        let first = nhs.next();
        if !nhs.any(|k| Some(k) != first) {
            child(component, &mut stats);
            continue;
        }
        stats.split_components += 1;
        let mut parts: BTreeMap<Option<&str>, Vec<u32>> = BTreeMap::new();
        for &i in component {
            let key = records[i as usize].nhs.map(|k| strings.resolve(&k));
            parts.entry(key).or_default().push(i);
        }
        // Records without an NHS key cannot be placed safely: each stands alone.
        for (k, part) in parts {
            match k {
                Some(_) => child(&part, &mut stats),
                None => part.iter().for_each(|&i| child(&[i], &mut stats)),
            }
        }
    }
    stats.children = linkage.child_keys.len();
    (linkage, stats)
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
    // For each (source, key): the first person seen with it, and whether another had it.
    let mut persons: foldhash::HashMap<(Sym, Sym), (Sym, bool)> = Default::default();
    for r in records {
        if let Some(d) = key(r) {
            let seen = persons
                .entry((r.source, d))
                .or_insert((r.source_person_key, false));
            seen.1 |= seen.0 != r.source_person_key;
        }
    }
    let ambiguous: foldhash::HashSet<Sym> = persons
        .iter()
        .filter(|(_, (_, shared))| *shared)
        .map(|((_, d), _)| *d)
        .collect();
    drop(persons);
    let mut groups: foldhash::HashMap<Sym, Vec<u32>> = Default::default();
    for (i, r) in records.iter().enumerate() {
        if let Some(d) = key(r).filter(|d| !ambiguous.contains(d)) {
            groups.entry(d).or_default().push(i as u32);
        }
    }
    let conflict = |x: Option<Sym>, y: Option<Sym>| matches!((x, y), (Some(x), Some(y)) if x != y);
    for members in groups.values().filter(|m| m.len() > 1) {
        for (x, &a) in members.iter().enumerate() {
            for &b in &members[x + 1..] {
                let (a, b) = (a as usize, b as usize);
                let (ra, rb) = (&records[a], &records[b]);
                if conflict(ra.nhs, rb.nhs) || conflict(ra.upn, rb.upn) {
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

    /// A record written with plain strings.
    #[derive(Debug, Clone, Copy, Default)]
    struct R<'a> {
        source: &'a str,
        source_person_key: &'a str,
        nhs: Option<&'a str>,
        upn: Option<&'a str>,
        local: Option<&'a str>,
        demo: Option<&'a str>,
        demo_name: Option<&'a str>,
    }

    /// A row of person_link, as strings.
    #[derive(Debug, Clone, PartialEq)]
    struct Out {
        source: String,
        source_person_key: String,
        child_key: String,
        match_rule: Option<MatchRule>,
    }

    /// Interns the records, links them and spells the outcome out again.
    fn link_strs(rs: &[R], p: &Pseudonymiser, options: LinkOptions) -> (Vec<Out>, LinkStats) {
        let mut strings = strings();
        let mut sym = |s: Option<&str>| s.map(|s| strings.get_or_intern(s));
        let records: Vec<LinkRecord> = rs
            .iter()
            .map(|r| LinkRecord {
                source: sym(Some(r.source)).unwrap(),
                source_person_key: sym(Some(r.source_person_key)).unwrap(),
                nhs: sym(r.nhs),
                upn: sym(r.upn),
                local: sym(r.local),
                demo: sym(r.demo),
                demo_name: sym(r.demo_name),
            })
            .collect();
        let (linkage, stats) = link(&records, &strings, p, options);
        let out = rs
            .iter()
            .enumerate()
            .map(|(i, r)| Out {
                source: r.source.into(),
                source_person_key: r.source_person_key.into(),
                child_key: linkage.child_key(i).into(),
                match_rule: linkage.rule_of[i],
            })
            .collect();
        (out, stats)
    }

    fn rec<'a>(
        source: &'a str,
        key: &'a str,
        nhs: Option<&'a str>,
        demo: Option<&'a str>,
    ) -> R<'a> {
        R {
            source,
            source_person_key: key,
            nhs,
            demo,
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
        let (links, stats) = link_strs(&records, &p, LinkOptions::default());
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
        let (links, stats) = link_strs(&records, &p, LinkOptions::default());
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
        let (_, stats) = link_strs(&records, &p, LinkOptions::default());
        assert_eq!(stats.children, 2);
    }

    /// DEMO_NAME: a family that moved between the registration and the side file has two
    /// demographic keys (different postcodes) but one name-and-birth key. Off by default;
    /// when on it links them, keeps the guards (twins with the same name and birth date in
    /// one source stay apart; different NHS numbers block the edge) and is reported.
    #[test]
    fn demo_name_links_moved_families_only_when_on() {
        let p = Pseudonymiser::demo();
        let moved = |source: &'static str,
                     key: &'static str,
                     demo: &'static str,
                     name: &'static str,
                     nhs: Option<&'static str>| R {
            source,
            source_person_key: key,
            nhs,
            demo: Some(demo),
            demo_name: Some(name),
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
        let child = |links: &[Out], s: &str, k: &str| {
            links
                .iter()
                .find(|l| l.source == s && l.source_person_key == k)
                .unwrap()
                .clone()
        };
        let (off, off_stats) = link_strs(&records, &p, LinkOptions::default());
        assert_ne!(
            child(&off, "cc", "a").child_key,
            child(&off, "side", "la1").child_key
        );
        assert_eq!(off_stats.children, 7);
        let (on, on_stats) = link_strs(&records, &p, LinkOptions { demo_name: true });
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

    /// A component joined through a record without an NHS key (DEMO to one side, UPN to
    /// the other) that ends up holding two NHS keys is split: each NHS-keyed part is a
    /// child, the keyless record stands alone. The outcome does not depend on the order of
    /// the records.
    #[test]
    fn two_nhs_keys_split_the_component_whatever_the_order() {
        let p = Pseudonymiser::demo();
        let records = vec![
            rec("chis", "n1", Some("n1"), Some("d")),
            R {
                source: "cc",
                source_person_key: "b",
                demo: Some("d"),
                upn: Some("u"),
                ..Default::default()
            },
            R {
                source: "eyfsp",
                source_person_key: "u",
                nhs: Some("n2"),
                upn: Some("u"),
                ..Default::default()
            },
            rec("hv", "n1", Some("n1"), None),
        ];
        let (links, stats) = link_strs(&records, &p, LinkOptions::default());
        assert_eq!(stats.split_components, 1);
        assert_eq!(stats.children, 3);
        assert_eq!(links[0].child_key, links[3].child_key);
        assert_eq!(links[0].child_key, p.child("n1"));
        assert_eq!(links[2].child_key, p.child("n2"));
        assert_eq!(links[1].child_key, p.child("u"));
        assert_eq!(links[1].match_rule, None);
        assert_eq!(links[0].match_rule, Some(MatchRule::Nhs));
        let reversed: Vec<R> = records.iter().rev().copied().collect();
        let (mut again, again_stats) = link_strs(&reversed, &p, LinkOptions::default());
        again.reverse();
        assert_eq!(again, links);
        assert_eq!(again_stats, stats);
    }

    /// Social care and education: the side file carries the NHS number for a CIN child, the
    /// census and 903 share the LA child id, the pupil links by UPN; twins in the side file
    /// (same surname, DOB and postcode, different LA ids) stay apart, and a pupil whose UPN
    /// differs from the census child's is not joined by a demographic key.
    #[test]
    fn social_care_records_join_the_same_child() {
        let p = Pseudonymiser::demo();
        let sc = |source: &'static str,
                  la: &'static str,
                  nhs: Option<&'static str>,
                  upn: Option<&'static str>,
                  demo: Option<&'static str>| R {
            source,
            source_person_key: la,
            local: Some(la),
            nhs,
            upn,
            demo,
            demo_name: None,
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
            R {
                source: "eyfsp",
                source_person_key: "u1",
                upn: Some("u1"),
                ..Default::default()
            },
            // Twins in the side file.
            sc("sc_person_identifiers", "la7", None, None, Some("twin")),
            sc("sc_person_identifiers", "la8", None, None, Some("twin")),
            rec("chis", "n7", Some("n7"), Some("twin")),
            // A pupil with another UPN but the same demographic key as the side-file record.
            R {
                source: "eyfsp",
                source_person_key: "u9",
                upn: Some("u9"),
                demo: Some("d1"),
                ..Default::default()
            },
        ];
        let (links, stats) = link_strs(&records, &p, LinkOptions::default());
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

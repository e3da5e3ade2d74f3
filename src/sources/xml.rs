//! A streaming XML reader for census files (quick-xml): the document is read event by event
//! and only one repeating group at a time (a CIN `Child`) is held as a small tree, so a
//! whole-county census never becomes a DOM. Every element keeps its line number and its
//! path, which is how quarantine rows point staff at a fault.

use quick_xml::Reader;
use quick_xml::events::Event;

/// One element of the group being read: its text (leaf) or its child elements.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Element name (local name, namespace prefix dropped).
    pub name: String,
    /// 1-based line of the start tag.
    pub line: u64,
    /// Path from the document root, with 1-based positions among equal siblings:
    /// `Message/Children/Child[3]/CINdetails[2]/Section47[1]`.
    pub path: String,
    /// Trimmed text content (empty for group elements).
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Node>,
}

impl Node {
    /// The first child element called `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first of several spellings that is present (element names changed between
    /// census years: `GenderCurrent` became `Sex`, `Reviews` holds `CPPreviewDate`).
    pub fn child_any(&self, names: &[&str]) -> Option<&Node> {
        names.iter().find_map(|n| self.child(n))
    }

    /// Every child element called `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of child `name`, `None` when absent or empty.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.as_str())
            .filter(|t| !t.is_empty())
    }
}

/// What the reader found outside the repeating groups.
pub enum Item {
    /// A complete element directly under the document root other than the group container
    /// (the CIN `Header`).
    Top(Node),
    /// One complete repeating group (a CIN `Child`).
    Group(Node),
}

/// Reads a document of the shape `Root / (Top elements…, Container / Group*)` and hands
/// each top element and each group to `each` as soon as it is complete. Returns the root
/// element's name, or an error message (with the line) when the file is not well-formed XML.
pub fn read_groups(
    bytes: &[u8],
    container: &str,
    group: &str,
    each: &mut dyn FnMut(Item),
) -> Result<String, String> {
    let mut reader = Reader::from_reader(bytes);
    let mut lines = LineCounter::default();
    // Open elements with their paths and sibling counters; `building` holds the partial
    // tree of the current top element or group, deepest last.
    let mut open: Vec<String> = Vec::new();
    let mut paths: Vec<String> = Vec::new();
    let mut building: Vec<Node> = Vec::new();
    let mut sibling_counts: Vec<std::collections::HashMap<String, u32>> = vec![Default::default()];
    let mut root = String::new();
    let mut buf = Vec::new();
    loop {
        let at = reader.buffer_position() as usize;
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            let line = lines.line_at(bytes, reader.error_position() as usize);
            format!("The file is not well-formed XML: {e} (line {line}).")
        })?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let name = local_name(e.name().as_ref());
                let line = lines.line_at(bytes, at + leading_space(&bytes[at..]));
                let counts = sibling_counts.last_mut().expect("root counter");
                let n = counts.entry(name.clone()).or_insert(0);
                *n += 1;
                // The root and its direct children are unique; below them every step carries
                // its position among equal siblings.
                let path = match paths.last() {
                    None => name.clone(),
                    Some(parent) if open.len() == 1 => format!("{parent}/{name}"),
                    Some(parent) => format!("{parent}/{name}[{n}]"),
                };
                let depth = open.len();
                if depth == 0 {
                    root = name.clone();
                }
                let inside_container = open.last().is_some_and(|p| p == container);
                let starts_unit = (depth == 1 && name != container)
                    || (inside_container && name == group && building.is_empty());
                if starts_unit || !building.is_empty() {
                    building.push(Node {
                        name: name.clone(),
                        line,
                        path: path.clone(),
                        ..Node::default()
                    });
                }
                if is_empty {
                    close(&mut building, depth, container, &open, each);
                } else {
                    open.push(name);
                    paths.push(path);
                    sibling_counts.push(Default::default());
                }
            }
            Event::End(_) => {
                open.pop();
                paths.pop();
                sibling_counts.pop();
                let depth = open.len();
                close(&mut building, depth, container, &open, each);
            }
            Event::Text(t) => {
                if let Some(node) = building.last_mut() {
                    node.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(node) = building.last_mut() {
                    node.text.push_str(&t.into_inner());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(node) = building.last_mut() {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c.to_string()),
                        _ => quick_xml::escape::resolve_predefined_entity(r.as_ref())
                            .map(str::to_string),
                    };
                    let Some(s) = resolved else {
                        return Err(format!(
                            "The file uses an unknown entity near line {}.",
                            lines.line_at(bytes, at)
                        ));
                    };
                    node.text.push_str(&s);
                }
            }
            Event::Eof => {
                if !open.is_empty() {
                    return Err(format!(
                        "The file ends inside <{}> (line {}): it is truncated. Export the census again.",
                        open.last().expect("open element"),
                        lines.line_at(bytes, bytes.len())
                    ));
                }
                if root.is_empty() {
                    return Err("The file holds no XML element.".into());
                }
                return Ok(root);
            }
            _ => {}
        }
        buf.clear();
    }
}

/// Ends the element on top of `building`: attaches it to its parent, or hands a finished
/// top element or group to `each`.
fn close(
    building: &mut Vec<Node>,
    depth: usize,
    container: &str,
    open: &[String],
    each: &mut dyn FnMut(Item),
) {
    let Some(mut node) = building.pop() else {
        return;
    };
    // Text arrives in pieces around entity references: trim the whole, once.
    let trimmed = node.text.trim();
    if trimmed.len() != node.text.len() {
        node.text = trimmed.to_string();
    }
    match building.last_mut() {
        Some(parent) => parent.children.push(node),
        None => {
            let in_container = open.last().is_some_and(|p| p == container);
            if depth == 1 && !in_container {
                each(Item::Top(node));
            } else {
                each(Item::Group(node));
            }
        }
    }
}

fn local_name(qname: &str) -> String {
    match qname.rsplit_once(':') {
        Some((_, local)) => local.to_string(),
        None => qname.to_string(),
    }
}

/// Whitespace before a tag belongs to the previous event: skip it to find the tag's line.
fn leading_space(rest: &[u8]) -> usize {
    rest.iter().take_while(|c| c.is_ascii_whitespace()).count()
}

/// Turns byte offsets (which only grow) into 1-based line numbers in one pass overall.
#[derive(Default)]
struct LineCounter {
    offset: usize,
    line: u64,
}

impl LineCounter {
    fn line_at(&mut self, bytes: &[u8], offset: usize) -> u64 {
        let offset = offset.min(bytes.len());
        if offset >= self.offset {
            self.line += bytes[self.offset..offset]
                .iter()
                .filter(|&&c| c == b'\n')
                .count() as u64;
        } else {
            self.line = bytes[..offset].iter().filter(|&&c| c == b'\n').count() as u64;
        }
        self.offset = offset;
        self.line + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(xml: &str) -> Result<Vec<(bool, Node)>, String> {
        let mut out = Vec::new();
        read_groups(xml.as_bytes(), "Children", "Child", &mut |i| match i {
            Item::Top(n) => out.push((true, n)),
            Item::Group(n) => out.push((false, n)),
        })?;
        Ok(out)
    }

    #[test]
    fn groups_lines_paths_and_entities() {
        let xml = "<Message>\n<Header><Year>2024</Year></Header>\n<Children>\n<Child>\n  <A>x &amp; y&#33;</A>\n  <B><C>1</C><C>2</C></B>\n  <B/>\n</Child>\n<Child><A>z</A></Child>\n</Children>\n</Message>\n";
        let items = read(xml).unwrap();
        assert_eq!(items.len(), 3);
        let (top, header) = &items[0];
        assert!(*top);
        assert_eq!(header.text_of("Year"), Some("2024"));
        assert_eq!(header.line, 2);
        let (_, child) = &items[1];
        assert_eq!(child.line, 4);
        assert_eq!(child.path, "Message/Children/Child[1]");
        assert_eq!(child.text_of("A"), Some("x & y!"));
        let bs: Vec<&Node> = child.all("B").collect();
        assert_eq!(bs.len(), 2);
        assert_eq!(bs[0].line, 6);
        assert_eq!(bs[0].path, "Message/Children/Child[1]/B[1]");
        assert_eq!(bs[1].path, "Message/Children/Child[1]/B[2]");
        assert_eq!(
            bs[0].children[1].path,
            "Message/Children/Child[1]/B[1]/C[2]"
        );
        assert_eq!(items[2].1.path, "Message/Children/Child[2]");
        assert_eq!(items[2].1.line, 9);
    }

    #[test]
    fn malformed_and_truncated_files_are_errors() {
        let e = read("<Message><Children><Child></Kid></Children></Message>").unwrap_err();
        assert!(e.contains("not well-formed"), "{e}");
        let e = read("<Message>\n<Children>\n<Child>").unwrap_err();
        assert!(e.contains("truncated") && e.contains("Child"), "{e}");
        assert!(read("").is_err());
    }
}

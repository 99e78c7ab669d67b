//! A small element tree rendered with quick-xml, so every name, attribute
//! and text is escaped by a real writer. Used for libvirt's pool, volume,
//! domain and network documents.

use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

#[derive(Debug, Clone, PartialEq)]
pub struct El {
    name: &'static str,
    attrs: Vec<(&'static str, String)>,
    children: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    El(El),
    Text(String),
}

impl El {
    pub fn new(name: &'static str) -> El {
        El {
            name,
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    pub fn attr(mut self, k: &'static str, v: impl Into<String>) -> El {
        self.attrs.push((k, v.into()));
        self
    }

    pub fn child(mut self, c: El) -> El {
        self.children.push(Node::El(c));
        self
    }

    pub fn child_if(self, cond: bool, c: impl FnOnce() -> El) -> El {
        if cond {
            self.child(c())
        } else {
            self
        }
    }

    pub fn children(mut self, cs: impl IntoIterator<Item = El>) -> El {
        self.children.extend(cs.into_iter().map(Node::El));
        self
    }

    pub fn text(mut self, t: impl Into<String>) -> El {
        self.children.push(Node::Text(t.into()));
        self
    }

    /// `<name>text</name>`
    pub fn leaf(name: &'static str, t: impl Into<String>) -> El {
        El::new(name).text(t)
    }

    pub fn render(&self) -> String {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        write(&mut w, self);
        let mut s = String::from_utf8(w.into_inner()).expect("XML is written from UTF-8 strings");
        s.push('\n');
        s
    }
}

fn write(w: &mut Writer<Vec<u8>>, el: &El) {
    let mut start = BytesStart::new(el.name);
    for (k, v) in &el.attrs {
        start.push_attribute((*k, v.as_str()));
    }
    // Writing into a Vec cannot fail.
    if el.children.is_empty() {
        w.write_event(Event::Empty(start)).expect("write to Vec");
        return;
    }
    w.write_event(Event::Start(start)).expect("write to Vec");
    for c in &el.children {
        match c {
            Node::El(e) => write(w, e),
            Node::Text(t) => w
                .write_event(Event::Text(BytesText::new(t)))
                .expect("write to Vec"),
        }
    }
    w.write_event(Event::End(BytesEnd::new(el.name)))
        .expect("write to Vec");
}

/// The (unescaped) attributes of every `<tag>` element in a document, in
/// order: how creature reads the few values it needs from libvirt's XML.
pub fn attrs_of(xml: &str, tag: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) if e.name().as_ref() == tag.as_bytes() => {
                out.push(
                    e.attributes()
                        .flatten()
                        .filter_map(|a| {
                            let k = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                            a.unescape_value().ok().map(|v| (k, v.into_owned()))
                        })
                        .collect(),
                );
            }
            Ok(Event::Eof) | Err(_) => return out,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::El;

    #[test]
    fn reads_attributes_of_a_tag() {
        let a = super::attrs_of(
            "<n><host mac='m1' ip='1'/><x/><host mac='m&amp;2'/></n>",
            "host",
        );
        assert_eq!(a.len(), 2);
        assert_eq!(a[0]["ip"], "1");
        assert_eq!(a[1]["mac"], "m&2");
    }

    #[test]
    fn escapes_attributes_and_text() {
        let x = El::new("a")
            .attr("q", "\"'<&>")
            .child(El::leaf("b", "</b><evil/>"))
            .render();
        assert_eq!(
            x,
            "<a q=\"&quot;&apos;&lt;&amp;&gt;\">\n  <b>&lt;/b&gt;&lt;evil/&gt;</b>\n</a>\n"
        );
    }
}

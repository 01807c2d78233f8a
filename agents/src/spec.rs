//! One description per agent: parameters and actions, from which the meta-data XML, the man
//! page, the usage text and the generic part of validate-all are all derived.
//!
//! The description is plain `static` data, so printing meta-data costs no allocation beyond the
//! output string and an agent cannot advertise a parameter it does not read (the typed reader in
//! [`crate::params`] only answers for parameters named here).

use std::fmt::Write as _;

use crate::ocf::Action;

/// The `type` of a parameter's `<content>` element (ra-api-1.dtd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    String,
    Integer,
    Boolean,
    Time,
}

impl ContentType {
    /// The name used in meta-data.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::String => "string",
            ContentType::Integer => "integer",
            ContentType::Boolean => "boolean",
            ContentType::Time => "time",
        }
    }
}

/// One `<parameter>`.
#[derive(Debug, Clone, Copy)]
pub struct ParameterSpec {
    pub name: &'static str,
    pub content: ContentType,
    /// The default shown in meta-data and used when the parameter is unset or empty. `None`
    /// prints no `default` attribute.
    pub default: Option<&'static str>,
    pub required: bool,
    pub unique: bool,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
}

impl ParameterSpec {
    /// A string parameter with no default, not required, not unique; refine with struct update.
    pub const fn string(
        name: &'static str,
        shortdesc: &'static str,
        longdesc: &'static str,
    ) -> ParameterSpec {
        ParameterSpec {
            name,
            content: ContentType::String,
            default: None,
            required: false,
            unique: false,
            shortdesc,
            longdesc,
        }
    }
}

/// One `<action>` advertised in meta-data.
#[derive(Debug, Clone, Copy)]
pub struct ActionSpec {
    pub action: Action,
    pub timeout: &'static str,
    pub interval: Option<&'static str>,
    pub depth: Option<u32>,
}

impl ActionSpec {
    pub const fn new(action: Action, timeout: &'static str) -> ActionSpec {
        ActionSpec {
            action,
            timeout,
            interval: None,
            depth: None,
        }
    }

    pub const fn monitor(
        action: Action,
        depth: u32,
        timeout: &'static str,
        interval: &'static str,
    ) -> ActionSpec {
        ActionSpec {
            action,
            timeout,
            interval: Some(interval),
            depth: Some(depth),
        }
    }
}

/// Everything an agent says about itself.
#[derive(Debug, Clone, Copy)]
pub struct AgentSpec {
    /// The type name Pacemaker knows the agent under (`IPaddr2`).
    pub name: &'static str,
    pub version: &'static str,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    pub parameters: &'static [ParameterSpec],
    pub actions: &'static [ActionSpec],
}

impl AgentSpec {
    /// The parameter called `name`.
    pub fn parameter(&self, name: &str) -> Option<&'static ParameterSpec> {
        self.parameters.iter().find(|p| p.name == name)
    }

    /// Whether `action` is advertised (and so implemented).
    pub fn supports(&self, action: Action) -> bool {
        matches!(action, Action::MetaData | Action::Usage)
            || self.actions.iter().any(|a| a.action == action)
    }

    /// The OCF meta-data document, valid against ra-api-1.dtd.
    pub fn meta_data(&self) -> String {
        let mut x = String::with_capacity(8192);
        x.push_str("<?xml version=\"1.0\"?>\n");
        x.push_str("<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n");
        let _ = writeln!(
            x,
            "<resource-agent name=\"{}\" version=\"{}\">",
            escape(self.name),
            escape(self.version)
        );
        let _ = writeln!(x, "<version>1.1</version>\n");
        let _ = writeln!(
            x,
            "<longdesc lang=\"en\">\n{}\n</longdesc>",
            escape(self.longdesc)
        );
        let _ = writeln!(
            x,
            "<shortdesc lang=\"en\">{}</shortdesc>\n",
            escape(self.shortdesc)
        );
        x.push_str("<parameters>\n");
        for p in self.parameters {
            let _ = write!(x, "<parameter name=\"{}\"", escape(p.name));
            if p.unique {
                x.push_str(" unique=\"1\"");
            }
            if p.required {
                x.push_str(" required=\"1\"");
            }
            x.push_str(">\n");
            let _ = writeln!(
                x,
                "<longdesc lang=\"en\">\n{}\n</longdesc>",
                escape(p.longdesc)
            );
            let _ = writeln!(
                x,
                "<shortdesc lang=\"en\">{}</shortdesc>",
                escape(p.shortdesc)
            );
            let _ = write!(x, "<content type=\"{}\"", p.content.as_str());
            if let Some(default) = p.default {
                let _ = write!(x, " default=\"{}\"", escape(default));
            }
            x.push_str(" />\n</parameter>\n\n");
        }
        x.push_str("</parameters>\n\n<actions>\n");
        for a in self.actions {
            let _ = write!(x, "<action name=\"{}\"", a.action);
            if let Some(depth) = a.depth {
                let _ = write!(x, " depth=\"{depth}\"");
            }
            let _ = write!(x, " timeout=\"{}\"", a.timeout);
            if let Some(interval) = a.interval {
                let _ = write!(x, " interval=\"{interval}\"");
            }
            x.push_str(" />\n");
        }
        x.push_str("<action name=\"meta-data\" timeout=\"5s\" />\n");
        x.push_str("</actions>\n</resource-agent>\n");
        x
    }

    /// `usage: NAME {start|stop|...}`.
    pub fn usage(&self) -> String {
        let mut names: Vec<&str> = self.actions.iter().map(|a| a.action.as_str()).collect();
        names.push("meta-data");
        names.dedup();
        format!("usage: {} {{{}}}", self.name, names.join("|"))
    }

    /// A man page in roff, section 7, named like resource-agents' (`ocf_hapx_IPaddr2`).
    pub fn man_page(&self, provider: &str, source: &str) -> String {
        let title = format!("ocf_{provider}_{}", self.name);
        let mut m = String::with_capacity(8192);
        let _ = writeln!(
            m,
            ".TH {} 7 \"\" \"{}\" \"OCF resource agents\"",
            roff(&title),
            roff(source)
        );
        let _ = writeln!(m, ".SH NAME\n{} \\- {}", roff(&title), roff(self.shortdesc));
        let _ = writeln!(m, ".SH SYNOPSIS");
        let mut synopsis = roff(&format!("ocf:{provider}:{}", self.name));
        for p in self.parameters {
            if p.required {
                let _ = write!(synopsis, " {}=value", roff(p.name));
            } else {
                let _ = write!(synopsis, " [{}=value]", roff(p.name));
            }
        }
        let _ = writeln!(m, "{synopsis}");
        let _ = writeln!(m, ".SH DESCRIPTION\n{}", roff_paragraphs(self.longdesc));
        let _ = writeln!(m, ".SH PARAMETERS");
        for p in self.parameters {
            let mut head = format!(".TP\n\\fB{}\\fR ({}", roff(p.name), p.content.as_str());
            if p.required {
                head.push_str(", required");
            }
            if p.unique {
                head.push_str(", unique");
            }
            if let Some(default) = p.default.filter(|d| !d.is_empty()) {
                let _ = write!(head, ", default \\fI{}\\fR", roff(default));
            }
            head.push(')');
            let _ = writeln!(m, "{head}\n{}", roff(p.shortdesc));
            let _ = writeln!(m, ".IP\n{}", roff_paragraphs(p.longdesc));
        }
        let _ = writeln!(m, ".SH OPERATIONS");
        for a in self.actions {
            let mut line = format!(".TP\n\\fB{}\\fR\ntimeout {}", a.action, a.timeout);
            if let Some(interval) = a.interval {
                let _ = write!(line, ", interval {interval}");
            }
            if let Some(depth) = a.depth {
                let _ = write!(line, ", depth {depth}");
            }
            let _ = writeln!(m, "{line}");
        }
        let _ = writeln!(m, ".SH EXAMPLE\n.nf");
        let _ = write!(
            m,
            "crm configure primitive my-{} ocf:{provider}:{}",
            self.name.to_lowercase(),
            self.name
        );
        let required: Vec<&ParameterSpec> = self.parameters.iter().filter(|p| p.required).collect();
        if !required.is_empty() {
            m.push_str(" \\e\n  params");
            for p in required {
                let _ = write!(m, " {}=...", roff(p.name));
            }
        }
        m.push_str(" \\e\n  op monitor interval=20s timeout=20s\n.fi\n");
        let _ = writeln!(m, ".SH SEE ALSO\n\\fBhapx\\-ocf\\fR(1), \\fBhapx\\fR(1)");
        m
    }
}

/// XML text and attribute escaping.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes roff's special characters in running text.
fn roff(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            _ => out.push(c),
        }
    }
    out
}

/// A long description: blank lines become paragraph breaks, a leading `.` or `'` is protected.
fn roff_paragraphs(s: &str) -> String {
    let mut out = String::new();
    for line in s.trim().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            out.push_str(".sp\n");
            continue;
        }
        if line.starts_with('.') || line.starts_with('\'') {
            out.push_str("\\&");
        }
        out.push_str(&roff(line));
        out.push('\n');
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_data_lists_every_parameter_and_action_once() {
        for spec in crate::specs() {
            let xml = spec.meta_data();
            for p in spec.parameters {
                assert_eq!(
                    xml.matches(&format!("<parameter name=\"{}\"", p.name))
                        .count(),
                    1,
                    "{}: {}",
                    spec.name,
                    p.name
                );
            }
            assert_eq!(xml.matches("<action name=\"meta-data\"").count(), 1);
            assert!(xml.contains(&format!("<resource-agent name=\"{}\"", spec.name)));
            let man = spec.man_page("hapx", "hapx test");
            assert!(
                man.starts_with(&format!(".TH ocf_hapx_{} 7", spec.name)),
                "{man}"
            );
            assert!(spec.usage().contains("start|stop"), "{}", spec.usage());
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
        assert_eq!(roff_paragraphs(".x -y\n\nz"), "\\&.x \\-y\n.sp\nz");
    }
}

//! The crm_mon flags `status` understands (`crm status` passes its arguments to `crm_mon -1`).

/// What `status` shows besides the default sections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonOptions {
    /// `-r`/`--inactive`: all resources, stopped ones included ("Full List of Resources").
    pub inactive: bool,
    /// `-f`/`--failcounts`: the migration summary with fail counts.
    pub fail_counts: bool,
    /// `-A`/`--show-node-attributes`: node attributes.
    pub node_attributes: bool,
    /// Resources without their nodes (`crm_resource --list`); not a crm_mon flag.
    pub rsc_only: bool,
}

impl MonOptions {
    /// Parses crm_mon flags; `-1`/`--one-shot` is accepted (status is always one-shot).
    /// Anything else is refused with the flag named.
    pub fn parse(args: &[String]) -> Result<MonOptions, String> {
        let mut o = MonOptions::default();
        for a in args {
            match a.as_str() {
                "-1" | "--one-shot" => {}
                "-r" | "--inactive" => o.inactive = true,
                "-f" | "--failcounts" => o.fail_counts = true,
                "-A" | "--show-node-attributes" => o.node_attributes = true,
                // crmsh's own spellings: `status inactive|failcounts|attributes`
                "inactive" => o.inactive = true,
                "failcounts" => o.fail_counts = true,
                "attributes" => o.node_attributes = true,
                short if short.starts_with('-') && !short.starts_with("--") && short.len() > 2 => {
                    let expanded: Vec<String> =
                        short[1..].chars().map(|c| format!("-{c}")).collect();
                    let more = MonOptions::parse(&expanded)?;
                    o.inactive |= more.inactive;
                    o.fail_counts |= more.fail_counts;
                    o.node_attributes |= more.node_attributes;
                }
                other => {
                    return Err(format!(
                        "status: unsupported option '{other}' (hapx renders -1, -r, -f, -A)"
                    ));
                }
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<MonOptions, String> {
        MonOptions::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn combined_short_flags_and_crmsh_words() {
        let o = parse(&["-1rf", "attributes"]).unwrap();
        assert!(o.inactive && o.fail_counts && o.node_attributes);
        assert_eq!(parse(&[]).unwrap(), MonOptions::default());
    }

    #[test]
    fn unknown_flag_is_named() {
        let e = parse(&["-X"]).unwrap_err();
        assert!(e.contains("'-X'"), "{e}");
    }
}

//! Parameters as Pacemaker passes them: `OCF_RESKEY_<name>` environment variables, read against
//! the agent's [`AgentSpec`] and converted to typed values with errors that name the parameter.
//!
//! Like ocf-shellfuncs' `: ${OCF_RESKEY_x=default}`, an unset parameter takes its default; an
//! empty one does too (Pacemaker never sends empty values; people typing `ocf-tester -o x=` do).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::ocf::ExitCode;
use crate::spec::{AgentSpec, ContentType};

/// A parameter's value is wrong. The message names the parameter, the value and what is right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    pub name: String,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "parameter {}: {}", self.name, self.reason)
        } else {
            write!(
                f,
                "parameter {}={:?}: {}",
                self.name, self.value, self.reason
            )
        }
    }
}

impl std::error::Error for ParamError {}

impl ParamError {
    pub fn new(name: &str, value: &str, reason: impl fmt::Display) -> ParamError {
        ParamError {
            name: name.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }

    /// The OCF code for a bad parameter: the configuration is wrong (OCF 1.1 section on
    /// OCF_ERR_CONFIGURED).
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::ErrConfigured
    }
}

/// The parameters of one invocation, with the spec they are checked against.
#[derive(Debug, Clone)]
pub struct Params {
    spec: &'static AgentSpec,
    given: BTreeMap<&'static str, String>,
    /// `OCF_RESKEY_CRM_meta_*` values, by the name after the prefix.
    meta: BTreeMap<String, String>,
}

const PREFIX: &str = "OCF_RESKEY_";
const META_PREFIX: &str = "OCF_RESKEY_CRM_meta_";

impl Params {
    /// Reads the parameters `spec` names from this process's environment.
    pub fn from_env(spec: &'static AgentSpec) -> Params {
        Params::from_vars(spec, std::env::vars())
    }

    /// Reads from `(variable, value)` pairs as found in an environment.
    pub fn from_vars(
        spec: &'static AgentSpec,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Params {
        let mut given = BTreeMap::new();
        let mut meta = BTreeMap::new();
        for (key, value) in vars {
            if let Some(m) = key.strip_prefix(META_PREFIX) {
                meta.insert(m.to_string(), value);
            } else if let Some(name) = key.strip_prefix(PREFIX)
                && let Some(p) = spec.parameter(name)
                && !value.is_empty()
            {
                given.insert(p.name, value);
            }
        }
        Params { spec, given, meta }
    }

    /// The spec these parameters belong to.
    pub fn spec(&self) -> &'static AgentSpec {
        self.spec
    }

    /// Whether the user gave `name` (as opposed to it taking its default).
    pub fn is_given(&self, name: &str) -> bool {
        self.given.contains_key(name)
    }

    /// The value, or the default, or `None` when neither is non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        if let Some(v) = self.given.get(name) {
            return Some(v);
        }
        self.spec
            .parameter(name)
            .and_then(|p| p.default)
            .filter(|d| !d.is_empty())
    }

    /// The value of a required parameter.
    pub fn required(&self, name: &str) -> Result<&str, ParamError> {
        self.get(name)
            .ok_or_else(|| ParamError::new(name, "", "is required but not set"))
    }

    /// A boolean the way ocf_is_true reads it (yes/true/1/on, no/false/0/off, any case).
    pub fn boolean(&self, name: &str) -> Result<bool, ParamError> {
        match self.get(name) {
            None => Ok(false),
            Some(v) => parse_bool(v).ok_or_else(|| {
                ParamError::new(
                    name,
                    v,
                    "must be a boolean (true/false, yes/no, 1/0, on/off)",
                )
            }),
        }
    }

    /// An optional boolean: `None` when unset and without default.
    pub fn opt_boolean(&self, name: &str) -> Result<Option<bool>, ParamError> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.boolean(name).map(Some),
        }
    }

    /// An integer within `range`.
    pub fn integer(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, ParamError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let n: i64 = v
            .trim()
            .parse()
            .map_err(|_| ParamError::new(name, v, "must be an integer"))?;
        if !range.contains(&n) {
            return Err(ParamError::new(
                name,
                v,
                format!("must be between {} and {}", range.start(), range.end()),
            ));
        }
        Ok(Some(n))
    }

    /// `OCF_RESKEY_CRM_meta_<name>`.
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.meta.get(name).map(String::as_str)
    }

    /// The action's timeout Pacemaker gave (`CRM_meta_timeout`, milliseconds).
    pub fn meta_timeout(&self) -> Option<Duration> {
        self.meta("timeout")
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_millis)
    }

    /// Whether Pacemaker runs this resource as a clone instance (ocf_is_clone).
    pub fn is_clone(&self) -> bool {
        self.meta("clone_max")
            .and_then(|v| v.parse::<i64>().ok())
            .is_some_and(|n| n > 0)
    }

    /// Checks what the spec alone says: required parameters are present and every given value
    /// has the syntax of its content type.
    pub fn check_spec(&self) -> Result<(), ParamError> {
        for p in self.spec.parameters {
            if p.required {
                self.required(p.name)?;
            }
            match p.content {
                ContentType::Boolean => {
                    self.boolean(p.name)?;
                }
                ContentType::Integer => {
                    self.integer(p.name, i64::MIN..=i64::MAX)?;
                }
                ContentType::Time => {
                    if let Some(v) = self.get(p.name) {
                        parse_time(v).ok_or_else(|| {
                            ParamError::new(p.name, v, "must be a time (e.g. 20s, 500ms, 1min)")
                        })?;
                    }
                }
                ContentType::String => {}
            }
        }
        Ok(())
    }
}

/// ocf_is_true's reading of a boolean, plus its explicit false words.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "on" | "y" => Some(true),
        "no" | "false" | "0" | "off" | "n" => Some(false),
        _ => None,
    }
}

/// A Pacemaker time: a number with an optional unit (ms, s, m/min, h); bare numbers are seconds.
pub fn parse_time(v: &str) -> Option<Duration> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    Some(match unit.trim() {
        "" | "s" | "sec" => Duration::from_secs(n),
        "ms" | "msec" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n * 60),
        "h" | "hr" => Duration::from_secs(n * 3600),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ParameterSpec;

    static PARAMS: [ParameterSpec; 3] = [
        ParameterSpec {
            required: true,
            ..ParameterSpec::string("ip", "address", "the address")
        },
        ParameterSpec {
            content: ContentType::Integer,
            default: Some("5"),
            ..ParameterSpec::string("count", "count", "a count")
        },
        ParameterSpec {
            content: ContentType::Boolean,
            default: Some("false"),
            ..ParameterSpec::string("flag", "flag", "a flag")
        },
    ];
    static SPEC: AgentSpec = AgentSpec {
        name: "T",
        version: "1",
        shortdesc: "t",
        longdesc: "t",
        parameters: &PARAMS,
        actions: &[],
    };

    fn params(vars: &[(&str, &str)]) -> Params {
        Params::from_vars(
            &SPEC,
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        let p = params(&[("OCF_RESKEY_ip", "x"), ("OCF_RESKEY_count", "")]);
        assert_eq!(p.integer("count", 0..=10).unwrap(), Some(5));
        assert!(!p.boolean("flag").unwrap());
        assert!(!p.is_given("count"));
        assert!(p.check_spec().is_ok());
    }

    #[test]
    fn errors_name_the_parameter() {
        let p = params(&[("OCF_RESKEY_count", "many")]);
        let e = p.check_spec().unwrap_err();
        assert_eq!(e.name, "ip");
        let p = params(&[("OCF_RESKEY_ip", "x"), ("OCF_RESKEY_count", "many")]);
        let e = p.check_spec().unwrap_err();
        assert_eq!(
            e.to_string(),
            "parameter count=\"many\": must be an integer"
        );
        let p = params(&[("OCF_RESKEY_ip", "x"), ("OCF_RESKEY_count", "11")]);
        assert!(p.integer("count", 0..=10).is_err());
    }

    #[test]
    fn meta_attributes_and_clone_detection() {
        let p = params(&[
            ("OCF_RESKEY_CRM_meta_clone_max", "2"),
            ("OCF_RESKEY_CRM_meta_timeout", "20000"),
        ]);
        assert!(p.is_clone());
        assert_eq!(p.meta_timeout(), Some(Duration::from_secs(20)));
    }

    #[test]
    fn times_and_booleans() {
        assert_eq!(parse_time("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_time("2min"), Some(Duration::from_secs(120)));
        assert_eq!(parse_time("20"), Some(Duration::from_secs(20)));
        assert_eq!(parse_time("x"), None);
        assert_eq!(parse_bool("YES"), Some(true));
        assert_eq!(parse_bool("off"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}

//! Resource agents: naming (`[class:[provider:]]type`), meta-data, and parameter checks.
//!
//! crmsh resolves short agent names the same way: `IPaddr2` is `ocf:<provider>:IPaddr2` with the
//! provider picked among those that have the agent (heartbeat first, then pacemaker). Parameter
//! checks read the agent's own `meta-data` (OCF agents run directly, as Pacemaker runs them) and
//! report what crmsh reports: `p: required parameter "ip" not defined`,
//! `p: parameter "ipp" is not known`.

use std::path::PathBuf;
use std::process::Command;

use hapx_cib::xml::{Document, Element};

/// The OCF root (`OCF_ROOT`, else `/usr/lib/ocf`).
pub fn ocf_root() -> PathBuf {
    std::env::var_os("OCF_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/ocf"))
}

/// The resource agent classes Pacemaker knows (`crm_resource --list-standards`), sorted.
pub fn classes() -> Vec<String> {
    let listed = Command::new("crm_resource")
        .arg("--list-standards")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
        });
    let mut classes = listed.unwrap_or_else(|| {
        ["lsb", "ocf", "service", "stonith"]
            .map(String::from)
            .to_vec()
    });
    classes.sort();
    classes
}

/// The OCF providers that have agent `kind`, sorted.
pub fn providers(kind: &str) -> Vec<String> {
    let dir = ocf_root().join("resource.d");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().join(kind).exists())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    out.sort();
    out
}

/// Every OCF provider directory.
pub fn all_providers() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(ocf_root().join("resource.d"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    out.sort();
    out
}

/// The agents of an OCF provider.
pub fn agents(provider: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(ocf_root().join("resource.d").join(provider))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.'))
        .collect();
    out.sort();
    out
}

/// `[class:[provider:]]type` to (class, provider, type) as crmsh resolves it; `None` when the
/// spec names no type or an OCF agent whose provider cannot be determined.
pub fn disambiguate(spec: &str) -> Option<(String, Option<String>, String)> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (class, provider, kind) = match parts.as_slice() {
        [c, p, t] => (c.to_string(), Some(p.to_string()), t.to_string()),
        [c, t] => (c.to_string(), None, t.to_string()),
        [t] => ("ocf".to_string(), None, t.to_string()),
        _ => return None,
    };
    if kind.is_empty() || class.is_empty() {
        return None;
    }
    let provider = match (class.as_str(), provider) {
        ("ocf", Some(p)) if !p.is_empty() => Some(p),
        ("ocf", _) => Some(pick_provider(&providers(&kind))),
        (_, p) => p.filter(|p| !p.is_empty()),
    };
    Some((class, provider, kind))
}

fn pick_provider(providers: &[String]) -> String {
    if providers.is_empty() || providers.iter().any(|p| p == "heartbeat") {
        "heartbeat".into()
    } else if providers.iter().any(|p| p == "pacemaker") {
        "pacemaker".into()
    } else {
        providers[0].clone()
    }
}

/// One parameter from an agent's meta-data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    pub required: bool,
    pub unique: bool,
    pub shortdesc: String,
}

/// What an agent's meta-data says.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub parameters: Vec<Parameter>,
    pub shortdesc: String,
    /// The actions it advertises (but `meta-data` and `validate-all`), in its order.
    pub actions: Vec<AgentAction>,
    /// The raw XML.
    pub xml: String,
}

/// One `<action>` of an agent's meta-data: its name and its other attributes (timeout,
/// interval, role, depth...), the empty ones left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAction {
    pub name: String,
    pub attrs: Vec<(String, String)>,
}

impl AgentAction {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Why meta-data could not be had.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{0}: got no meta-data, does this RA exist?")]
    NoMetadata(String),
}

/// The agent's meta-data, asked once per process (a script naming an agent a thousand times
/// runs it once).
pub fn metadata(
    class: &str,
    provider: Option<&str>,
    kind: &str,
) -> Result<Metadata, MetadataError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Metadata>>> = OnceLock::new();
    let key = agent_name(class, provider, kind);
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(found) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(found);
    }
    let meta = fetch_metadata(class, provider, kind)?;
    if let Ok(mut c) = cache.lock() {
        c.insert(key, meta.clone());
    }
    Ok(meta)
}

/// Runs the agent's `meta-data` action (OCF directly; other classes through `crm_resource`).
fn fetch_metadata(
    class: &str,
    provider: Option<&str>,
    kind: &str,
) -> Result<Metadata, MetadataError> {
    let name = agent_name(class, provider, kind);
    let output = if class == "ocf" {
        let path = ocf_root()
            .join("resource.d")
            .join(provider.unwrap_or("heartbeat"))
            .join(kind);
        if kind.contains('/') || !path.is_file() {
            return Err(MetadataError::NoMetadata(name));
        }
        // As Pacemaker runs it for meta-data: the instance is named after the agent.
        Command::new(&path)
            .arg("meta-data")
            .env("OCF_ROOT", ocf_root())
            .env("OCF_RESOURCE_INSTANCE", kind)
            .env("OCF_RESOURCE_TYPE", kind)
            .env("OCF_RESOURCE_PROVIDER", provider.unwrap_or("heartbeat"))
            .output()
    } else {
        Command::new("crm_resource")
            .args(["--show-metadata", &name])
            .output()
    };
    let output = output.map_err(|_| MetadataError::NoMetadata(name.clone()))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut doc = Document::parse(&text).map_err(|_| MetadataError::NoMetadata(name.clone()))?;
    if doc.root.name != "resource-agent" {
        return Err(MetadataError::NoMetadata(name));
    }
    if class == "stonith" && add_fencer_parameters(&mut doc) {
        text = doc.to_xml();
    }
    let parameters = doc
        .root
        .child("parameters")
        .map(|ps| ps.children_named("parameter").map(parameter).collect())
        .unwrap_or_default();
    let actions = doc
        .root
        .child("actions")
        .map(|a| {
            a.children_named("action")
                .filter_map(agent_action)
                .collect()
        })
        .unwrap_or_default();
    Ok(Metadata {
        parameters,
        actions,
        shortdesc: doc
            .root
            .child("shortdesc")
            .map(Element::text)
            .unwrap_or_default(),
        xml: text,
    })
}

/// Where Pacemaker keeps its daemons (`pacemaker-fenced`...).
const PACEMAKER_DAEMON_DIRS: &[&str] = &["/usr/lib/pacemaker", "/usr/libexec/pacemaker"];

/// The cluster properties Pacemaker 2.1.5 knows (crmsh's `get_properties_list`): the
/// parameters in the meta-data of the controller, the scheduler and the CIB manager, in that
/// order. crmsh asks the three daemons on every run; hapx carries their answer, so a commit
/// forks nothing and the check works where Pacemaker is not installed.
/// `shell_parity::cluster_property_names_are_the_installed_pacemakers` keeps it equal to what
/// the installed daemons say.
pub const CLUSTER_PROPERTY_NAMES: &[&str] = &[
    // pacemaker-controld
    "dc-version",
    "cluster-infrastructure",
    "cluster-name",
    "dc-deadtime",
    "cluster-recheck-interval",
    "load-threshold",
    "node-action-limit",
    "fence-reaction",
    "election-timeout",
    "shutdown-escalation",
    "join-integration-timeout",
    "join-finalization-timeout",
    "transition-delay",
    "stonith-watchdog-timeout",
    "stonith-max-attempts",
    "no-quorum-policy",
    "shutdown-lock",
    // pacemaker-schedulerd
    "symmetric-cluster",
    "maintenance-mode",
    "start-failure-is-fatal",
    "enable-startup-probes",
    "shutdown-lock-limit",
    "stonith-enabled",
    "stonith-action",
    "stonith-timeout",
    "have-watchdog",
    "concurrent-fencing",
    "startup-fencing",
    "priority-fencing-delay",
    "cluster-delay",
    "batch-limit",
    "migration-limit",
    "stop-all-resources",
    "stop-orphan-resources",
    "stop-orphan-actions",
    "remove-after-stop",
    "pe-error-series-max",
    "pe-warn-series-max",
    "pe-input-series-max",
    "node-health-strategy",
    "node-health-base",
    "node-health-green",
    "node-health-yellow",
    "node-health-red",
    "placement-strategy",
    // pacemaker-based
    "enable-acl",
    "cluster-ipc-limit",
];

/// A fencing device also takes the fencer's own parameters (`pcmk_host_list`,
/// `pcmk_delay_max`...): like crmsh, they are appended to the agent's, from
/// `pacemaker-fenced metadata`. False when the fencer is not installed.
fn add_fencer_parameters(doc: &mut Document) -> bool {
    let Some(fenced) = PACEMAKER_DAEMON_DIRS
        .iter()
        .map(|d| PathBuf::from(d).join("pacemaker-fenced"))
        .find(|p| p.is_file())
    else {
        return false;
    };
    let Some(fencer) = Command::new(fenced)
        .arg("metadata")
        .output()
        .ok()
        .and_then(|o| Document::parse(&String::from_utf8_lossy(&o.stdout)).ok())
    else {
        return false;
    };
    let extra: Vec<Element> = fencer
        .root
        .child("parameters")
        .map(|ps| ps.children_named("parameter").cloned().collect())
        .unwrap_or_default();
    if extra.is_empty() {
        return false;
    }
    let params = doc.root.child_or_insert("parameters");
    params.children.extend(extra.into_iter().map(Into::into));
    true
}

/// crmsh's `actions()`: `meta-data` and `validate-all` are no operations one configures.
fn agent_action(a: &Element) -> Option<AgentAction> {
    let name = a.attr("name").filter(|n| !n.is_empty())?;
    if matches!(name, "meta-data" | "validate-all") {
        return None;
    }
    let attrs = a
        .attributes
        .iter()
        .filter(|(k, v)| k != "name" && !v.is_empty())
        .cloned()
        .collect();
    Some(AgentAction {
        name: name.to_string(),
        attrs,
    })
}

fn parameter(p: &Element) -> Parameter {
    let flag = |name| matches!(p.attr(name), Some("1" | "true" | "yes"));
    Parameter {
        name: p.attr("name").unwrap_or_default().to_string(),
        required: flag("required"),
        unique: flag("unique"),
        shortdesc: p.child("shortdesc").map(Element::text).unwrap_or_default(),
    }
}

/// The resource agent standards Pacemaker knows.
pub const STANDARDS: &[&str] = &[
    "lsb", "nagios", "ocf", "service", "stonith", "systemd", "upstart",
];

/// Whether the agent exists, as crmsh finds out: its meta-data can be had. A class Pacemaker
/// does not know never can; without Pacemaker's `crm_resource` (which answers for the lsb,
/// systemd and service classes) only OCF agents can be asked, so those others pass.
pub fn check_exists(class: &str, provider: Option<&str>, kind: &str) -> Result<(), MetadataError> {
    if !STANDARDS.contains(&class) {
        return Err(MetadataError::NoMetadata(agent_name(class, provider, kind)));
    }
    match metadata(class, provider, kind) {
        Ok(_) => Ok(()),
        Err(_) if class != "ocf" && !crm_resource_installed() => Ok(()),
        Err(e) => Err(e),
    }
}

fn crm_resource_installed() -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|dir| dir.join("crm_resource").is_file())
}

/// `class:provider:type` (or `class:type`).
pub fn agent_name(class: &str, provider: Option<&str>, kind: &str) -> String {
    match provider {
        Some(p) => format!("{class}:{p}:{kind}"),
        None => format!("{class}:{kind}"),
    }
}

/// crmsh's parameter diagnostics for primitive `id` with instance attributes `names`.
pub fn check_params(
    id: &str,
    meta: &Metadata,
    names: &[String],
    class: &str,
    kind: &str,
) -> Vec<String> {
    let mut errors = Vec::new();
    let supplied_by_fencer = |p: &str| {
        class == "stonith"
            && (kind.starts_with("rhcs/") || kind.starts_with("fence_"))
            && matches!(p, "action" | "port")
    };
    for p in meta.parameters.iter().filter(|p| p.required) {
        if !supplied_by_fencer(&p.name) && !names.contains(&p.name) {
            errors.push(format!(
                "{id}: required parameter \"{}\" not defined",
                p.name
            ));
        }
    }
    for name in names {
        if name.starts_with('$') {
            continue;
        }
        if !meta.parameters.iter().any(|p| p.name == *name) {
            errors.push(format!("{id}: parameter \"{name}\" is not known"));
        }
    }
    errors
}

fn text_of(e: &Element, child: &str) -> String {
    e.child(child)
        .map(|c| c.text().trim().to_string())
        .unwrap_or_default()
}

/// crmsh's `get_shortdesc`: the short description unless it repeats the name or long text.
fn shortdesc(e: &Element, kind: &str) -> String {
    let name = e.attr("name").unwrap_or_default();
    let short = text_of(e, "shortdesc");
    let long = text_of(e, "longdesc");
    if !short.is_empty() && short != name && short != long && short != kind {
        short
    } else {
        String::new()
    }
}

/// `ra info`: the meta-data as crmsh's `meta_pretty` prints it.
pub fn pretty(meta: &Metadata, name: &str, kind: &str) -> String {
    let Ok(doc) = Document::parse(&meta.xml) else {
        return name.to_string();
    };
    let root = &doc.root;
    let mut parts = Vec::new();
    let title = shortdesc(root, kind);
    parts.push(if title.is_empty() {
        name.to_string()
    } else {
        format!("{title} ({name})")
    });
    let long = text_of(root, "longdesc");
    if !long.is_empty() {
        parts.push(long);
    }
    let tab = "    ";
    let params: Vec<String> = root
        .child("parameters")
        .into_iter()
        .flat_map(|p| p.children_named("parameter"))
        .map(|p| {
            let mut head = p.attr("name").unwrap_or_default().to_string();
            if p.attr("required") == Some("1") {
                head.push('*');
            }
            let content = p.child("content");
            let typ = content.and_then(|c| c.attr("type"));
            let default = content.and_then(|c| c.attr("default"));
            match (typ, default) {
                (Some(t), Some(d)) if !t.is_empty() && !d.is_empty() => {
                    head = format!("{head} ({t}, [{d}])")
                }
                (Some(t), _) if !t.is_empty() => head = format!("{head} ({t})"),
                _ => {}
            }
            head = format!("{head}: {}", shortdesc(p, kind));
            let long = text_of(p, "longdesc");
            if long.is_empty() {
                head
            } else {
                format!("{head}\n{tab}{}\n", long.replace('\n', &format!("\n{tab}")))
            }
        })
        .collect();
    if !params.is_empty() {
        parts.push(
            format!(
                "Parameters (*: required, []: default):\n\n{}",
                params.join("\n")
            )
            .trim_end()
            .to_string(),
        );
    }
    let actions: Vec<String> = root
        .child("actions")
        .into_iter()
        .flat_map(|a| a.children_named("action"))
        .filter(|a| !matches!(a.attr("name"), None | Some("meta-data" | "validate-all")))
        .map(|a| {
            let mut s = format!("{:<13}", a.attr("name").unwrap_or_default());
            for (k, v) in a
                .attributes
                .iter()
                .filter(|(k, v)| k != "name" && !v.is_empty())
            {
                s = format!("{s} {k}={v}");
            }
            format!("{tab}{s}")
        })
        .collect();
    if !actions.is_empty() {
        parts.push(format!(
            "Operations' defaults (advisory minimum):\n\n{}",
            actions.join("\n")
        ));
    }
    parts.join("\n\n")
}

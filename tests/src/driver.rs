//! The local driver under test: a private CIB file, an OCF root whose agents log every call,
//! and the driver as the real `hapx cluster start --foreground` process.
//!
//! The OCF root holds `resource.d/heartbeat` (the system's resource-agents, so
//! `ocf:heartbeat:Dummy` is the real Dummy) and `resource.d/test/Logged`: the real Dummy
//! behind a small wrapper that appends `RSC ACTION INTERVAL` to the fixture's action log
//! before running it (so tests see which operations ran, in which order, how many times) and
//! makes a start take `start_delay` seconds (so tests can act while an operation runs) and a
//! reload fail when `fail_reload` is set. `resource.d/test/Logged11` is the same around
//! pacemaker's Dummy, an OCF 1.1 agent with `reload-agent` and `reloadable` parameters.
//! Everything lives in one temporary directory removed on drop; the driver process is ended
//! by its pid.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hapx_cib::xml::Document;

use crate::{bins, require};

/// Where the system's resource-agents keep their agents.
pub const SYSTEM_OCF_ROOT: &str = "/usr/lib/ocf";

/// The node name tests give the driver.
pub const NODE: &str = "node1";

/// A CIB file, an OCF root and (when started) a driver.
#[derive(Debug)]
pub struct Fixture {
    pub dir: PathBuf,
    pub cib: PathBuf,
    pub ocf_root: PathBuf,
    pub action_log: PathBuf,
    driver: Option<Child>,
    driver_log: PathBuf,
}

/// One primitive for [`Fixture::write_cib`].
#[derive(Debug, Clone)]
pub struct Rsc {
    pub id: String,
    /// `ocf:test:Logged` unless changed.
    pub agent: String,
    pub monitor_ms: u64,
    pub monitor_on_fail: Option<String>,
    pub meta: Vec<(String, String)>,
    /// Extra parameters (`state` is always set, in the fixture's directory).
    pub params: Vec<(String, String)>,
}

impl Rsc {
    pub fn new(id: &str) -> Rsc {
        Rsc {
            id: id.to_string(),
            agent: "ocf:test:Logged".to_string(),
            monitor_ms: 1000,
            monitor_on_fail: None,
            meta: Vec::new(),
            params: Vec::new(),
        }
    }

    pub fn meta(mut self, name: &str, value: &str) -> Rsc {
        self.meta.push((name.into(), value.into()));
        self
    }

    pub fn param(mut self, name: &str, value: &str) -> Rsc {
        self.params.push((name.into(), value.into()));
        self
    }

    pub fn on_fail(mut self, policy: &str) -> Rsc {
        self.monitor_on_fail = Some(policy.into());
        self
    }
}

impl Fixture {
    /// A fresh directory with the OCF root; `name` makes it recognisable.
    pub fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("hapx-driver-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ocf_root = dir.join("ocf");
        let action_log = dir.join("actions.log");
        std::fs::create_dir_all(ocf_root.join("resource.d/test")).expect("creating the OCF root");
        let link = |target: &str, at: &Path| {
            std::os::unix::fs::symlink(target, at)
                .unwrap_or_else(|e| panic!("linking {}: {e}", at.display()))
        };
        link(&format!("{SYSTEM_OCF_ROOT}/lib"), &ocf_root.join("lib"));
        link(
            &format!("{SYSTEM_OCF_ROOT}/resource.d/heartbeat"),
            &ocf_root.join("resource.d/heartbeat"),
        );
        // Logged wraps heartbeat's Dummy (OCF 1.0, legacy `reload`); Logged11 wraps
        // pacemaker's Dummy (OCF 1.1, `reload-agent`, reloadable parameters).
        for (name, dummy) in [("Logged", "heartbeat"), ("Logged11", "pacemaker")] {
            write_logged_agent(
                &ocf_root.join("resource.d/test").join(name),
                dummy,
                &action_log,
            );
        }
        Fixture {
            cib: dir.join("cib.xml"),
            driver_log: dir.join("driver.log"),
            dir,
            ocf_root,
            action_log,
            driver: None,
        }
    }

    /// The state file of resource `id` (the Dummy's `state` parameter).
    pub fn state_file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.state"))
    }

    /// The CIB configuration for `resources` and `constraints` (raw `<rsc_order>`... XML),
    /// with stonith disabled as a single node without fencing needs.
    pub fn config_xml(&self, resources: &[Rsc], constraints: &str) -> String {
        let mut xml = String::from("<resources>");
        for r in resources {
            let (class, rest) = r.agent.split_once(':').expect("class:provider:type");
            let (provider, kind) = rest.split_once(':').expect("class:provider:type");
            xml.push_str(&format!(
                "<primitive id=\"{id}\" class=\"{class}\" provider=\"{provider}\" type=\"{kind}\">\
                 <instance_attributes id=\"{id}-instance_attributes\">\
                 <nvpair id=\"{id}-instance_attributes-state\" name=\"state\" value=\"{state}\"/>",
                id = r.id,
                state = self.state_file(&r.id).display()
            ));
            for (n, v) in &r.params {
                xml.push_str(&format!(
                    "<nvpair id=\"{id}-instance_attributes-{n}\" name=\"{n}\" value=\"{v}\"/>",
                    id = r.id
                ));
            }
            xml.push_str("</instance_attributes>");
            if !r.meta.is_empty() {
                xml.push_str(&format!(
                    "<meta_attributes id=\"{}-meta_attributes\">",
                    r.id
                ));
                for (n, v) in &r.meta {
                    xml.push_str(&format!(
                        "<nvpair id=\"{id}-meta_attributes-{n}\" name=\"{n}\" value=\"{v}\"/>",
                        id = r.id
                    ));
                }
                xml.push_str("</meta_attributes>");
            }
            let on_fail = r
                .monitor_on_fail
                .as_ref()
                .map(|p| format!(" on-fail=\"{p}\""))
                .unwrap_or_default();
            xml.push_str(&format!(
                "<operations><op id=\"{id}-monitor-{ms}\" name=\"monitor\" interval=\"{ms}ms\" timeout=\"20s\"{on_fail}/>\
                 </operations></primitive>",
                id = r.id,
                ms = r.monitor_ms
            ));
        }
        xml.push_str("</resources>");
        format!(
            "<crm_config><cluster_property_set id=\"cib-bootstrap-options\">\
             <nvpair id=\"cib-bootstrap-options-stonith-enabled\" name=\"stonith-enabled\" value=\"false\"/>\
             </cluster_property_set></crm_config><nodes/>{xml}<constraints>{constraints}</constraints>"
        )
    }

    /// Writes a new CIB with this configuration and an empty status.
    pub fn write_cib(&self, resources: &[Rsc], constraints: &str) {
        let xml = format!(
            "<cib crm_feature_set=\"3.16.1\" validate-with=\"pacemaker-3.9\" epoch=\"1\" num_updates=\"0\" admin_epoch=\"0\">\
             <configuration>{}</configuration><status/></cib>\n",
            self.config_xml(resources, constraints)
        );
        std::fs::write(&self.cib, xml).expect("writing the CIB");
    }

    /// Replaces the configuration of the CIB in place, keeping its status, under the CIB lock
    /// as the shell's commits do (epoch + 1).
    pub fn edit_config(&self, resources: &[Rsc], constraints: &str) {
        self.edit_config_xml(&self.config_xml(resources, constraints));
    }

    /// [`Fixture::edit_config`] with the configuration's XML (what [`Fixture::config_xml`]
    /// returns, possibly changed).
    pub fn edit_config_xml(&self, xml: &str) {
        let store = hapx_shell::driver::store::Store::new(&self.cib);
        let config = Document::parse(&format!("<configuration>{xml}</configuration>"))
            .expect("the configuration parses");
        store
            .update(hapx_shell::driver::store::Bump::Config, |doc| {
                let nodes = doc
                    .root
                    .path(&["configuration", "nodes"])
                    .cloned()
                    .expect("the driver added its node");
                let mut config = config.root.clone();
                if let Some(slot) = config.child_mut("nodes") {
                    *slot = nodes;
                }
                *doc.root
                    .child_mut("configuration")
                    .expect("a configuration") = config;
                Some(())
            })
            .expect("editing the CIB");
    }

    /// The `hapx` command with this fixture's CIB.
    pub fn hapx(&self) -> Command {
        let mut cmd = Command::new(bins::path("hapx"));
        cmd.env("HAPX_CIB", &self.cib)
            .env_remove("CIB_file")
            .env("OCF_ROOT", &self.ocf_root);
        cmd
    }

    /// Starts `hapx cluster start --foreground` for this CIB.
    pub fn start_driver(&mut self) {
        assert!(self.driver.is_none(), "the driver is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.driver_log)
            .expect("opening the driver log");
        let child = self
            .hapx()
            .args(["cluster", "start", "--foreground", "--node", NODE])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicating the log"))
            .stderr(log)
            .spawn()
            .expect("starting the driver");
        self.driver = Some(child);
    }

    /// `hapx cluster stop`, then waits for the driver process.
    pub fn stop_driver(&mut self) -> Output {
        let out = self
            .hapx()
            .args(["cluster", "stop"])
            .output()
            .expect("running hapx cluster stop");
        if let Some(mut child) = self.driver.take() {
            let _ = child.wait();
        }
        out
    }

    /// Kills the driver with SIGKILL (a crash), leaving whatever agent it was running.
    pub fn kill_driver(&mut self) {
        if let Some(mut child) = self.driver.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The driver's output so far.
    pub fn driver_log(&self) -> String {
        std::fs::read_to_string(&self.driver_log).unwrap_or_default()
    }

    /// The agent calls so far, as `RSC ACTION INTERVAL` lines.
    pub fn actions(&self) -> Vec<String> {
        std::fs::read_to_string(&self.action_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// How many times `rsc` ran `action` (interval 0).
    pub fn count(&self, rsc: &str, action: &str) -> usize {
        let line = format!("{rsc} {action} 0");
        self.actions().iter().filter(|l| **l == line).count()
    }

    /// The CIB as it is now.
    pub fn cib(&self) -> Document {
        let text = std::fs::read_to_string(&self.cib).expect("reading the CIB");
        Document::parse(&text).expect("the CIB parses")
    }

    /// Waits until `check` holds for the CIB, panicking with the driver's log after `timeout`.
    pub fn wait_until(&self, what: &str, timeout: Duration, check: impl Fn(&Document) -> bool) {
        let start = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&self.cib) {
                if let Ok(doc) = Document::parse(&text) {
                    if check(&doc) {
                        return;
                    }
                }
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}; driver log:\n{}\nactions:\n{}",
                self.driver_log(),
                self.actions().join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `crm_verify -x` on the CIB: its output and whether it passed.
    pub fn crm_verify(&self) -> (bool, String) {
        let out = Command::new("crm_verify")
            .arg("-x")
            .arg(&self.cib)
            .output()
            .expect("running crm_verify");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// What `crm_simulate -x CIB -S` would do next: the lines of its transition summary.
    pub fn crm_simulate_actions(&self) -> Vec<String> {
        let out = Command::new("crm_simulate")
            .arg("-x")
            .arg(&self.cib)
            .arg("-S")
            .output()
            .expect("running crm_simulate");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .skip_while(|l| !l.starts_with("Executing Cluster Transition"))
            .skip(1)
            .take_while(|l| !l.starts_with("Revised Cluster Status"))
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Whether what the driver's tests need is here (resource-agents' Dummy, `crm_verify`,
/// `crm_simulate`); else the test skips, or fails under CI (see [`require`]).
pub fn prerequisites(test: &str) -> bool {
    require::path(
        test,
        Path::new(&format!("{SYSTEM_OCF_ROOT}/resource.d/heartbeat/Dummy")),
        "resource-agents' Dummy",
    ) && require::command(test, "crm_verify")
        && require::command(test, "crm_simulate")
}

/// Pacemaker reads the fixture's CIB as settled: `crm_verify -x` passes without a word, and
/// `crm_simulate` has nothing left to do.
pub fn assert_pacemaker_reads_it_settled(f: &Fixture) {
    let (ok, text) = f.crm_verify();
    assert!(ok && text.trim().is_empty(), "crm_verify -x:\n{text}");
    let pending = f.crm_simulate_actions();
    assert!(
        pending.is_empty(),
        "crm_simulate would still do: {pending:?}"
    );
}

/// A wrapper around `PROVIDER`'s Dummy that logs every call to `action_log`, makes a start take
/// `start_delay` seconds, and makes a reload (either kind) fail with `fail_reload` set.
fn write_logged_agent(path: &Path, provider: &str, action_log: &Path) {
    let script = format!(
        "#!/bin/sh\necho \"$OCF_RESOURCE_INSTANCE $1 ${{OCF_RESKEY_CRM_meta_interval:-0}}\" >> {}\n\
         if [ \"$1\" = start ]; then sleep \"${{OCF_RESKEY_start_delay:-0}}\"; fi\n\
         case \"$1\" in reload|reload-agent) [ -z \"$OCF_RESKEY_fail_reload\" ] || exit 1;; esac\n\
         exec {SYSTEM_OCF_ROOT}/resource.d/{provider}/Dummy \"$@\"\n",
        action_log.display()
    );
    crate::executable::write_executable(path, script.as_bytes());
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(mut child) = self.driver.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The role the history says `rsc` is in on the node: the last non-recurring operation and
/// its rc (`start 0`, `stop 0`, `monitor 7`), or None without history.
pub fn last_op(doc: &Document, rsc: &str) -> Option<(String, String)> {
    let id = format!("{rsc}_last_0");
    let op = doc
        .root
        .child("status")?
        .descendants()
        .find(|e| e.id() == Some(id.as_str()))?;
    Some((
        op.attr("operation")?.to_string(),
        op.attr("rc-code")?.to_string(),
    ))
}

/// The value of a transient attribute of the node.
pub fn transient(doc: &Document, name: &str) -> Option<String> {
    doc.root
        .child("status")?
        .descendants()
        .find(|e| e.name == "nvpair" && e.attr("name") == Some(name))
        .and_then(|e| e.attr("value").map(str::to_string))
}

/// Whether `rsc` is running according to its last operation.
pub fn started(doc: &Document, rsc: &str) -> bool {
    matches!(last_op(doc, rsc), Some((op, rc)) if rc == "0" && (op == "start" || op == "monitor"))
}

/// Whether each of `rscs` has its recurring monitor in the history (`RSC_monitor_INTERVAL`)
/// since its last start or probe (a higher `call-id` than `RSC_last_0`'s: an older one is one
/// Pacemaker's scheduler takes as cancelled, as after a new driver re-probed). A test that
/// waits for one resource's monitor alone may look while another's, scheduled in the same
/// pass, is still to run or to be recorded.
pub fn monitors_recorded(doc: &Document, rscs: &[&str]) -> bool {
    let call_id = |e: &hapx_cib::xml::Element| e.attr("call-id")?.parse::<i64>().ok();
    rscs.iter().all(|rsc| {
        let last = format!("{rsc}_last_0");
        let since = doc
            .root
            .descendants()
            .find(|e| e.id() == Some(last.as_str()))
            .and_then(call_id);
        let prefix = format!("{rsc}_monitor_");
        doc.root.descendants().any(|e| {
            e.id()
                .and_then(|id| id.strip_prefix(prefix.as_str()))
                .is_some_and(|interval| interval != "0")
                && call_id(e) > since
        })
    })
}

/// Whether `rsc` is stopped according to its last operation.
pub fn stopped(doc: &Document, rsc: &str) -> bool {
    matches!(last_op(doc, rsc), Some((op, rc)) if (op == "stop" && rc == "0") || (op == "monitor" && rc == "7"))
}

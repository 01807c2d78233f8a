//! A generator of random tier-1 CIBs for differential testing against `crm_simulate`.
//!
//! Each CIB has 2–8 nodes in various states (online, standby, cleanly down, lost), up to 30
//! primitives with operation histories (running, failed monitors, failed starts with fail
//! counts, nothing yet), random location, colocation and order constraints, stickiness and
//! migration thresholds. Generation is seeded, so a failure can be reproduced from its seed,
//! and [`shrink`] makes a failing CIB smaller while it keeps failing.

use std::fmt::Write as _;

/// A small, fast, seeded PRNG (xorshift64*), enough for test generation.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent as usize
    }
}

/// How a generated node looks in the status section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Online,
    Standby,
    /// Cleanly shut down.
    Down,
    /// Lost without a clean shutdown (needs fencing).
    Lost,
}

/// What one node's history says about one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    None,
    Probed,
    Running,
    FailedMonitor,
    FailedStart,
    Stopped,
}

/// A generated CIB in structured form (so it can be shrunk), rendered by [`Spec::to_xml`].
#[derive(Debug, Clone)]
pub struct Spec {
    pub stonith_enabled: bool,
    pub symmetric: bool,
    pub nodes: Vec<NodeState>,
    /// Per resource: stickiness, migration-threshold (0 = unset), target-role stopped.
    pub resources: Vec<(i32, u32, bool)>,
    /// history[r][n]
    pub history: Vec<Vec<History>>,
    /// (rsc, node, score)
    pub locations: Vec<(usize, usize, i32)>,
    /// (dependent, primary, score)
    pub colocations: Vec<(usize, usize, i32)>,
    /// (first, then, mandatory, symmetrical)
    pub orders: Vec<(usize, usize, bool, bool)>,
}

const SCORES: [i32; 8] = [-1_000_000, -100, -10, 0, 10, 50, 100, 1_000_000];

impl Spec {
    /// A random tier-1 cluster.
    pub fn generate(rng: &mut Rng) -> Spec {
        let n_nodes = 2 + rng.below(7);
        let max_rsc = if rng.chance(70) { 10 } else { 30 };
        let n_rsc = 1 + rng.below(max_rsc);
        let nodes = (0..n_nodes)
            .map(|i| match rng.below(10) {
                _ if i == 0 => NodeState::Online,
                0 => NodeState::Standby,
                1 => NodeState::Down,
                2 => NodeState::Lost,
                _ => NodeState::Online,
            })
            .collect();
        let resources = (0..n_rsc)
            .map(|_| {
                let stickiness = [0, 0, 1, 100, 1_000_000][rng.below(5)];
                let threshold = [0, 0, 1, 2, 3][rng.below(5)] as u32;
                (stickiness, threshold, rng.chance(5))
            })
            .collect();
        let mut history = vec![vec![History::None; n_nodes]; n_rsc];
        for row in history.iter_mut() {
            // At most one node where the resource is (or was, until it failed) active.
            let mut active_somewhere = false;
            for h in row.iter_mut() {
                *h = match rng.below(12) {
                    0..=3 => History::None,
                    4 | 5 => History::Probed,
                    6 | 7 if !active_somewhere => {
                        active_somewhere = true;
                        History::Running
                    }
                    8 if !active_somewhere => {
                        active_somewhere = true;
                        History::FailedMonitor
                    }
                    9 => History::FailedStart,
                    _ => History::Stopped,
                };
            }
        }
        let mut locations = Vec::new();
        for _ in 0..rng.below(n_rsc + 1) {
            locations.push((rng.below(n_rsc), rng.below(n_nodes), SCORES[rng.below(8)]));
        }
        let mut colocations = Vec::new();
        let mut orders = Vec::new();
        if n_rsc > 1 {
            for _ in 0..rng.below(n_rsc) {
                let a = rng.below(n_rsc);
                let b = rng.below(n_rsc);
                if a != b {
                    colocations.push((a, b, SCORES[rng.below(8)]));
                }
            }
            for _ in 0..rng.below(n_rsc) {
                let a = rng.below(n_rsc);
                let b = rng.below(n_rsc);
                if a != b {
                    orders.push((a, b, rng.chance(70), rng.chance(80)));
                }
            }
        }
        Spec {
            stonith_enabled: rng.chance(30),
            symmetric: rng.chance(85),
            nodes,
            resources,
            history,
            locations,
            colocations,
            orders,
        }
    }

    /// The CIB XML, with a fixed execution date.
    pub fn to_xml(&self) -> String {
        let mut x = String::new();
        x.push_str("<cib crm_feature_set=\"3.16.1\" validate-with=\"pacemaker-3.0\" epoch=\"1\" num_updates=\"1\" admin_epoch=\"0\" have-quorum=\"1\" dc-uuid=\"1\" execution-date=\"1700000000\">\n");
        x.push_str("  <configuration>\n    <crm_config>\n      <cluster_property_set id=\"cib-bootstrap-options\">\n");
        let _ = writeln!(
            x,
            "        <nvpair id=\"o-stonith\" name=\"stonith-enabled\" value=\"{}\"/>",
            self.stonith_enabled
        );
        let _ = writeln!(
            x,
            "        <nvpair id=\"o-sym\" name=\"symmetric-cluster\" value=\"{}\"/>",
            self.symmetric
        );
        x.push_str("      </cluster_property_set>\n    </crm_config>\n    <nodes>\n");
        for (i, state) in self.nodes.iter().enumerate() {
            let id = i + 1;
            if *state == NodeState::Standby {
                let _ = writeln!(
                    x,
                    "      <node id=\"{id}\" uname=\"node{id}\"><instance_attributes id=\"n{id}-ia\"><nvpair id=\"n{id}-sb\" name=\"standby\" value=\"on\"/></instance_attributes></node>"
                );
            } else {
                let _ = writeln!(x, "      <node id=\"{id}\" uname=\"node{id}\"/>");
            }
        }
        x.push_str("    </nodes>\n    <resources>\n");
        if self.stonith_enabled {
            x.push_str(
                "      <primitive id=\"fencing\" class=\"stonith\" type=\"fence_dummy\"/>\n",
            );
        }
        for (r, (stickiness, threshold, stopped)) in self.resources.iter().enumerate() {
            let _ = writeln!(
                x,
                "      <primitive id=\"rsc{r}\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\">"
            );
            let _ = writeln!(x, "        <meta_attributes id=\"rsc{r}-meta\">");
            let _ = writeln!(
                x,
                "          <nvpair id=\"rsc{r}-stick\" name=\"resource-stickiness\" value=\"{stickiness}\"/>"
            );
            if *threshold > 0 {
                let _ = writeln!(
                    x,
                    "          <nvpair id=\"rsc{r}-mt\" name=\"migration-threshold\" value=\"{threshold}\"/>"
                );
            }
            if *stopped {
                let _ = writeln!(
                    x,
                    "          <nvpair id=\"rsc{r}-tr\" name=\"target-role\" value=\"Stopped\"/>"
                );
            }
            x.push_str("        </meta_attributes>\n");
            let _ = writeln!(
                x,
                "        <operations><op id=\"rsc{r}-mon\" name=\"monitor\" interval=\"10s\"/></operations>"
            );
            x.push_str("      </primitive>\n");
        }
        x.push_str("    </resources>\n    <constraints>\n");
        for (i, (r, n, s)) in self.locations.iter().enumerate() {
            let _ = writeln!(
                x,
                "      <rsc_location id=\"loc{i}\" rsc=\"rsc{r}\" node=\"node{}\" score=\"{}\"/>",
                n + 1,
                score_text(*s)
            );
        }
        for (i, (d, p, s)) in self.colocations.iter().enumerate() {
            let _ = writeln!(
                x,
                "      <rsc_colocation id=\"col{i}\" rsc=\"rsc{d}\" with-rsc=\"rsc{p}\" score=\"{}\"/>",
                score_text(*s)
            );
        }
        for (i, (f, t, mandatory, symmetrical)) in self.orders.iter().enumerate() {
            let _ = writeln!(
                x,
                "      <rsc_order id=\"ord{i}\" first=\"rsc{f}\" then=\"rsc{t}\" kind=\"{}\" symmetrical=\"{symmetrical}\"/>",
                if *mandatory { "Mandatory" } else { "Optional" }
            );
        }
        x.push_str("    </constraints>\n  </configuration>\n  <status>\n");
        for (n, state) in self.nodes.iter().enumerate() {
            let id = n + 1;
            let attrs = match state {
                NodeState::Online | NodeState::Standby => {
                    "in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\""
                }
                NodeState::Down => {
                    "in_ccm=\"false\" crmd=\"offline\" join=\"down\" expected=\"down\""
                }
                NodeState::Lost => {
                    "in_ccm=\"false\" crmd=\"offline\" join=\"member\" expected=\"member\""
                }
            };
            let _ = writeln!(x, "    <node_state id=\"{id}\" uname=\"node{id}\" {attrs}>");
            let mut fails = String::new();
            let mut lrm = String::new();
            for (r, row) in self.history.iter().enumerate() {
                let ops = history_ops(r, row[n]);
                if ops.is_empty() {
                    continue;
                }
                let _ = writeln!(
                    lrm,
                    "          <lrm_resource id=\"rsc{r}\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\">"
                );
                lrm.push_str(&ops);
                lrm.push_str("          </lrm_resource>\n");
                if matches!(row[n], History::FailedMonitor | History::FailedStart) {
                    let count = if row[n] == History::FailedStart {
                        "INFINITY"
                    } else {
                        "1"
                    };
                    let _ = writeln!(
                        fails,
                        "          <nvpair id=\"n{id}-fc-{r}\" name=\"fail-count-rsc{r}#{}\" value=\"{count}\"/>",
                        if row[n] == History::FailedStart {
                            "start_0"
                        } else {
                            "monitor_10000"
                        }
                    );
                    let _ = writeln!(
                        fails,
                        "          <nvpair id=\"n{id}-lf-{r}\" name=\"last-failure-rsc{r}#{}\" value=\"1699999000\"/>",
                        if row[n] == History::FailedStart {
                            "start_0"
                        } else {
                            "monitor_10000"
                        }
                    );
                }
            }
            if !fails.is_empty() {
                let _ = writeln!(
                    x,
                    "      <transient_attributes id=\"{id}\"><instance_attributes id=\"status-{id}\">\n{fails}      </instance_attributes></transient_attributes>"
                );
            }
            if !lrm.is_empty() {
                let _ = writeln!(
                    x,
                    "      <lrm id=\"{id}\"><lrm_resources>\n{lrm}      </lrm_resources></lrm>"
                );
            }
            x.push_str("    </node_state>\n");
        }
        x.push_str("  </status>\n</cib>\n");
        x
    }

    /// Smaller variants of this spec (one thing removed each), for shrinking.
    pub fn smaller(&self) -> Vec<Spec> {
        let mut out = Vec::new();
        for i in 0..self.orders.len() {
            let mut s = self.clone();
            s.orders.remove(i);
            out.push(s);
        }
        for i in 0..self.colocations.len() {
            let mut s = self.clone();
            s.colocations.remove(i);
            out.push(s);
        }
        for i in 0..self.locations.len() {
            let mut s = self.clone();
            s.locations.remove(i);
            out.push(s);
        }
        if self.resources.len() > 1 {
            let last = self.resources.len() - 1;
            let mut s = self.clone();
            s.resources.pop();
            s.history.pop();
            s.locations.retain(|(r, _, _)| *r != last);
            s.colocations.retain(|(a, b, _)| *a != last && *b != last);
            s.orders.retain(|(a, b, _, _)| *a != last && *b != last);
            out.push(s);
        }
        for r in 0..self.history.len() {
            for n in 0..self.nodes.len() {
                if self.history[r][n] != History::None {
                    let mut s = self.clone();
                    s.history[r][n] = History::None;
                    out.push(s);
                }
            }
        }
        out
    }
}

/// Shrinks a failing spec while `fails` keeps returning true.
pub fn shrink(mut spec: Spec, fails: impl Fn(&Spec) -> bool) -> Spec {
    loop {
        let Some(smaller) = spec.smaller().into_iter().find(|s| fails(s)) else {
            return spec;
        };
        spec = smaller;
    }
}

fn score_text(s: i32) -> String {
    match s {
        1_000_000 => "INFINITY".into(),
        -1_000_000 => "-INFINITY".into(),
        s => s.to_string(),
    }
}

fn op(r: usize, id: &str, task: &str, interval: u32, rc: u32, expected: u32, call: u32) -> String {
    format!(
        "            <lrm_rsc_op id=\"rsc{r}_{id}\" operation_key=\"rsc{r}_{task}_{interval}\" operation=\"{task}\" transition-key=\"{call}:1:{expected}:00000000-0000-0000-0000-000000000000\" transition-magic=\"0:{rc};{call}:1:{expected}:00000000-0000-0000-0000-000000000000\" call-id=\"{call}\" rc-code=\"{rc}\" op-status=\"{}\" interval=\"{interval}\" last-rc-change=\"1699999000\" op-digest=\"{}\"/>\n",
        if rc == expected { 0 } else { 4 },
        // Pacemaker's digests of these operations' (empty) parameters, so that nothing looks
        // changed since it ran.
        if interval > 0 {
            "4811cef7f7f94e3a35a70be7916cb2fd"
        } else {
            "f2317cad3d54cec5d7d7aa7d0bf35cf8"
        }
    )
}

fn history_ops(r: usize, h: History) -> String {
    match h {
        History::None => String::new(),
        History::Probed => op(r, "last_0", "monitor", 0, 7, 7, 1),
        History::Running => {
            op(r, "last_0", "start", 0, 0, 0, 2)
                + &op(r, "monitor_10000", "monitor", 10000, 0, 0, 3)
        }
        History::FailedMonitor => {
            op(r, "last_0", "start", 0, 0, 0, 2)
                + &op(r, "monitor_10000", "monitor", 10000, 0, 0, 3)
                + &op(r, "last_failure_0", "monitor", 10000, 7, 0, 4)
        }
        History::FailedStart => op(r, "last_failure_0", "start", 0, 1, 0, 2),
        History::Stopped => op(r, "last_0", "stop", 0, 0, 0, 4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_parseable_cibs() {
        let mut rng = Rng::new(7);
        for _ in 0..50 {
            let spec = Spec::generate(&mut rng);
            let xml = spec.to_xml();
            hapx_cib::model::Cib::parse(&xml).expect("generated CIB parses");
            for smaller in spec.smaller() {
                hapx_cib::model::Cib::parse(&smaller.to_xml()).expect("shrunk CIB parses");
            }
        }
    }
}

//! The order HAProxy 2.6 allows `http-check` rules in, replayed while parsing so that a
//! misordered ruleset gets HAProxy's own message. Multi-step rulesets (each `connect`
//! opening a connection for the `send` and `expect`s after it) are run by hapx; a second
//! `send` on one connection (several requests on one connection, which HAProxy allows
//! only before `option httpchk` is read) gets a clear "not implemented by hapx" error
//! instead of its requests silently merged into one.
//!
//! HAProxy keeps the rules as a list in which `option httpchk` puts an implicit `send`
//! (merged into the first explicit `send`), numbers each rule for its messages, and checks
//! each new rule against the list so far:
//! - a `connect` must be the first rule, not counting comments, `set-var`s and the implicit
//!   `send` (always, even before `option httpchk`);
//! - once `option httpchk` was seen: a `send` follows a `connect`, an `expect` a `send` or
//!   an `expect`, and a `connect` an `expect`.
//!
//! A proxy's first `http-check` line or `option httpchk` starts its own list, as HAProxy
//! drops the rules inherited from `defaults` then.

use super::model::Place;

/// What a rule does, for the order checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Connect,
    Send,
    Expect,
    /// `comment`, `set-var`, `unset-var`: numbered, but never in the way of the others.
    Comment,
}

impl StepKind {
    fn keyword(self) -> &'static str {
        match self {
            StepKind::Connect => "connect",
            StepKind::Send => "send",
            StepKind::Expect => "expect",
            StepKind::Comment => "comment",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Step {
    kind: StepKind,
    /// HAProxy's 0-based step number (its messages say `index + 1`).
    index: usize,
    /// The implicit `send` of `option httpchk`, not yet merged into an explicit one.
    from_option: bool,
}

/// One proxy's `http-check` rules so far, as HAProxy lists them.
#[derive(Debug, Clone, Default)]
pub struct CheckOrder {
    /// The section these rules were written in (a proxy inherits its defaults' list).
    owner: Option<Place>,
    option_httpchk: bool,
    steps: Vec<Step>,
    /// The text of the last `comment` rule, for the rules after it.
    pub comments: CommentCarry,
}

/// What a check rule is, for [`CommentCarry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    Comment,
    Connect,
    Send,
    Expect,
    /// `set-var`, `set-var-fmt`, `unset-var`.
    Var,
}

/// HAProxy's `check_proxy_tcpcheck` giving a `comment` rule's text to the rules after it:
/// to the connect, send and expect rules that follow, until the kind of rule changes (a
/// connect takes it and ends it, a variable rule ends it).
#[derive(Debug, Clone, Default)]
pub struct CommentCarry {
    comment: Option<String>,
    previous: Option<RuleAction>,
}

impl CommentCarry {
    /// The next rule is an `action` (`text`: a comment rule's): the comment it takes.
    pub fn next(&mut self, action: RuleAction, text: Option<&str>) -> Option<String> {
        if self
            .previous
            .is_some_and(|p| p != action && p != RuleAction::Comment)
        {
            self.comment = None;
        }
        self.previous = Some(action);
        match action {
            RuleAction::Comment => {
                self.comment = text.map(str::to_string);
                None
            }
            RuleAction::Connect => self.comment.take(),
            RuleAction::Var => {
                self.comment = None;
                None
            }
            RuleAction::Send | RuleAction::Expect => self.comment.clone(),
        }
    }
}

impl CheckOrder {
    /// `option httpchk` in the section at `owner`: its implicit `send` goes first (after a
    /// first `connect`), unless an explicit `send` is already there to take its values.
    pub fn option_httpchk(&mut self, owner: &Place) {
        if self.owner.as_ref() != Some(owner) {
            self.steps.clear();
            self.owner = Some(owner.clone());
            self.comments = CommentCarry::default();
        }
        self.option_httpchk = true;
        let mut rules = self.steps.iter().filter(|s| s.kind != StepKind::Comment);
        let first = match rules.next() {
            Some(s) if s.kind == StepKind::Connect => rules.next(),
            other => other,
        };
        if first.is_none_or(|s| s.kind != StepKind::Send) {
            let implicit = Step {
                kind: StepKind::Send,
                index: 0,
                from_option: true,
            };
            self.steps.insert(0, implicit);
        }
    }

    /// Whether the section at `owner` wrote rules of its own (not only inherited ones, nor
    /// only `send-state`/`disable-on-404`, which are not rules).
    pub fn written_in(&self, owner: &Place) -> bool {
        self.owner.as_ref() == Some(owner) && self.steps.iter().any(|s| !s.from_option)
    }

    /// Adds an `http-check` rule written in the section at `owner`: HAProxy's message when it
    /// may not come here, or hapx's when it starts a second step.
    pub fn add(&mut self, kind: StepKind, owner: &Place) -> Result<(), String> {
        if self.owner.as_ref() != Some(owner) {
            self.steps.retain(|s| s.from_option);
            self.owner = Some(owner.clone());
            self.comments = CommentCarry::default();
        }
        let index = match self.steps.last() {
            None => 0,
            Some(s) if s.from_option => 0,
            Some(s) => s.index + 1,
        };
        let rule = format!("'http-check {}'", kind.keyword());
        if kind == StepKind::Connect {
            self.check_connect_first(&rule)?;
        }
        if self.option_httpchk {
            self.check_follows_last(kind, index, &rule)?;
        }
        if kind == StepKind::Send && self.sent_since_connect() {
            return Err(format!(
                "{rule} : multi-step http-check (a second 'send' rule on one connection, without a 'connect' before it) is not implemented by hapx."
            ));
        }
        self.push(kind, index);
        Ok(())
    }

    /// Whether an explicit `send` follows the last `connect` (or the start): a rule added now
    /// runs after the request is built. (`option httpchk`'s implicit send does not count: the
    /// first explicit one takes its place, and without one the request has no format.)
    pub fn sent_since_connect(&self) -> bool {
        (self.steps.iter().rev())
            .take_while(|s| s.kind != StepKind::Connect)
            .any(|s| s.kind == StepKind::Send && !s.from_option)
    }

    fn check_connect_first(&self, rule: &str) -> Result<(), String> {
        let first = self
            .steps
            .iter()
            .find(|s| s.kind != StepKind::Comment && !s.from_option);
        match first {
            Some(s) if s.kind != StepKind::Connect => Err(format!(
                "{rule} : first step MUST also be a 'connect', optionally preceded by a 'set-var', an 'unset-var' or a 'comment', when there is a 'connect' step in the tcp-check ruleset."
            )),
            _ => Ok(()),
        }
    }

    fn check_follows_last(&self, kind: StepKind, index: usize, rule: &str) -> Result<(), String> {
        use StepKind::{Connect, Expect, Send};
        let Some(last) = self
            .steps
            .iter()
            .rev()
            .find(|s| s.kind != StepKind::Comment)
        else {
            return Ok(());
        };
        let missing = match kind {
            _ if last.from_option => return Ok(()),
            Send if last.kind != Connect => "connect",
            Expect if !matches!(last.kind, Send | Expect) => "send",
            Connect if last.kind != Expect => "expect",
            _ => return Ok(()),
        };
        // HAProxy's message ends in "..": its own full stop, then the caller's.
        Err(format!(
            "{rule} : unable to add http-check {} rule at step {} (missing {missing} rule)..",
            kind.keyword(),
            index + 1
        ))
    }

    /// Appends the rule; a first explicit `send` takes the implicit one's place in the count.
    fn push(&mut self, kind: StepKind, index: usize) {
        let mut step = Step {
            kind,
            index,
            from_option: false,
        };
        if kind == StepKind::Send {
            let first = self.steps.iter().position(|s| s.kind != StepKind::Comment);
            if let Some(i) = first.filter(|&i| self.steps[i].from_option) {
                step.index = self.steps.remove(i).index;
            }
        }
        self.steps.push(step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(lines: &[&str]) -> Result<(), String> {
        let mut order = CheckOrder::default();
        let owner = Place::default();
        for l in lines {
            match *l {
                "option" => order.option_httpchk(&owner),
                "connect" => order.add(StepKind::Connect, &owner)?,
                "send" => order.add(StepKind::Send, &owner)?,
                "expect" => order.add(StepKind::Expect, &owner)?,
                _ => order.add(StepKind::Comment, &owner)?,
            }
        }
        Ok(())
    }

    /// Each case was run through `haproxy -c` (2.6.12) for its step number.
    #[test]
    fn misordered_rules_get_haproxys_step_numbers() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["option", "comment", "send", "send"],
                "send rule at step 2 (missing connect",
            ),
            (
                &["option", "comment", "send", "expect", "comment", "send"],
                "step 4 (missing connect",
            ),
            (
                &["option", "connect", "expect"],
                "expect rule at step 2 (missing send",
            ),
            (
                &["option", "connect", "comment", "expect"],
                "step 3 (missing send",
            ),
            (
                &["option", "connect", "send", "connect"],
                "connect rule at step 2 (missing expect",
            ),
            (&["option", "connect", "connect"], "step 2 (missing expect"),
            (
                &["option", "expect", "send"],
                "send rule at step 2 (missing connect",
            ),
            (
                &["send", "expect", "option", "send"],
                "step 3 (missing connect",
            ),
            (
                &["send", "expect", "connect"],
                "first step MUST also be a 'connect'",
            ),
            (
                &["option", "expect", "connect"],
                "first step MUST also be a 'connect'",
            ),
        ];
        for (lines, message) in cases {
            let err = replay(lines).expect_err(&format!("{lines:?} must be refused"));
            assert!(err.contains(message), "{lines:?}: {err}");
        }
    }

    #[test]
    fn steps_pass_and_a_second_send_on_one_connection_is_not_implemented() {
        replay(&["option", "comment", "connect", "send", "expect", "expect"]).unwrap();
        replay(&["send", "option", "expect"]).unwrap();
        replay(&["connect", "connect"]).unwrap();
        let steps = ["connect", "send", "expect", "connect", "send", "expect"];
        replay(&[&["option"], &steps[..]].concat()).unwrap();
        let err = replay(&["send", "send", "option"]).unwrap_err();
        assert!(
            err.contains("second 'send'") && err.contains("not implemented by hapx"),
            "{err}"
        );
    }

    #[test]
    fn a_proxy_starts_its_own_list() {
        let mut order = CheckOrder::default();
        let defaults = Place::default();
        let backend = Place {
            line: 9,
            ..Place::default()
        };
        order.option_httpchk(&defaults);
        order.add(StepKind::Send, &defaults).unwrap();
        order.add(StepKind::Expect, &defaults).unwrap();
        order.add(StepKind::Send, &backend).unwrap();
        order.add(StepKind::Expect, &backend).unwrap();
        order.add(StepKind::Connect, &backend).unwrap_err();
    }
}

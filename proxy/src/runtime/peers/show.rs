//! `show peers [dict|-] [SECTION]`: each running section, its members and the tables they
//! share, in HAProxy 2.6's words and layout (sections, members and tables last declared
//! first, as HAProxy chains them).
//!
//! The fields hapx has as HAProxy has them are its values: names, `disabled`, the resync
//! state's `flags` (the `PEERS_F_*` bits of the events seen: local or remote lesson
//! assigned, finished, partial, timed out, requested), each member's role, activity,
//! address, last status, counters (`confirm`, heartbeats, `new_conn`, `proto_err`, `coll`),
//! `PEER_F_*` flags (teaching, learning, alive, not up to date), an accepted session's
//! addresses, and per table the ids, the member's data bits and the update numbers (hapx
//! may number more changes per request than HAProxy). What
//! is HAProxy's memory cannot match: the addresses (`0x...`: here those of hapx's own
//! structures), and the timers (`resync_timeout`, `last_hdshk`, `reconnect`, `heartbeat`,
//! from hapx's own deadlines). `task_calls` counts, for a section, its sessions, connection
//! attempts and resync events, and for a session the turns of its loop (hapx has no
//! HAProxy tasks); `st0=7 st1=0 state=EST` is an established session's state, the only
//! one hapx lists (its sessions appear once the handshake is done: HAProxy lists a session
//! still connecting, `st0=6 ... state=TAR`, as active); `refcnt=1` is the
//! reference HAProxy's local peer holds on each table (hapx counts none).

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use tokio::time::Instant;

use super::{SECTIONS, Section, Table};

/// `PEERS_F_*`: the section's resync state.
const RESYNC_LOCAL: u32 = 0x1;
const RESYNC_REMOTE: u32 = 0x2;
const RESYNC_ASSIGN: u32 = 0x4;
const RESYNC_PROCESS: u32 = 0x8;
pub(super) const RESYNC_LOCAL_TIMEOUT: u32 = 0x10;
pub(super) const RESYNC_REMOTE_TIMEOUT: u32 = 0x20;
pub(super) const RESYNC_LOCAL_FINISHED: u32 = 0x100;
pub(super) const RESYNC_REMOTE_FINISHED: u32 = 0x200;
pub(super) const RESYNC_LOCAL_PARTIAL: u32 = 0x400;
pub(super) const RESYNC_REMOTE_PARTIAL: u32 = 0x800;
pub(super) const RESYNC_LOCAL_ASSIGN: u32 = 0x1000;
pub(super) const RESYNC_REMOTE_ASSIGN: u32 = 0x2000;
pub(super) const RESYNC_REQUESTED: u32 = 0x4000;
/// A stopping process stays for its successor's lesson.
const DO_NOT_STOP: u32 = 0x10000;

/// `PEER_F_*`: a member's session state.
pub(super) const TEACH_PROCESS: u32 = 0x1;
pub(super) const TEACH_FINISHED: u32 = 0x8;
const TEACH_COMPLETE: u32 = 0x10;
pub(super) const LEARN_ASSIGN: u32 = 0x100;
const LEARN_NOT_UP_TO_DATE: u32 = 0x200;
pub(super) const ALIVE: u32 = 0x2000_0000;

/// Statuses of a connection not yet answered.
pub(super) const CONNECTING: u32 = 100;
pub(super) const CONNECTED: u32 = 110;

/// What is reported of a member (HAProxy's `struct peer`).
#[derive(Debug)]
pub(super) struct PeerStats {
    /// The last status: of the connection being made, or the member's answer.
    pub status: u32,
    /// The last connection made or accepted.
    pub last_hdshk: Option<Instant>,
    /// Without a session: the next connection's time.
    pub reconnect: Option<Instant>,
    pub tx_hbt: u32,
    pub rx_hbt: u32,
    pub no_hbt: u32,
    pub new_conn: u32,
    pub proto_err: u32,
    pub coll: u32,
    /// The established session, if any.
    pub session: Option<SessionView>,
    /// Per table, as the last session left it (HAProxy keeps it across sessions).
    pub tables: Vec<SharedView>,
}

impl PeerStats {
    pub fn new(tables: usize) -> PeerStats {
        PeerStats {
            status: 0,
            last_hdshk: None,
            reconnect: None,
            tx_hbt: 0,
            rx_hbt: 0,
            no_hbt: 0,
            new_conn: 0,
            proto_err: 0,
            coll: 0,
            session: None,
            tables: vec![SharedView::default(); tables],
        }
    }
}

/// A session's dictionary caches of names (`server_key`) sent and received, by id (less
/// one): kept by the session itself (under a lock `show peers` takes too), not copied.
#[derive(Debug)]
pub(super) struct Dicts {
    pub tx: Box<[Option<String>; super::DICT_ENTRIES]>,
    pub rx: Box<[Option<String>; super::DICT_ENTRIES]>,
}

impl Dicts {
    pub fn new() -> Dicts {
        Dicts {
            tx: Box::new(std::array::from_fn(|_| None)),
            rx: Box::new(std::array::from_fn(|_| None)),
        }
    }
}

/// What changes at every turn of a session's loop, kept in atomics so that the loop takes
/// no lock for it: the turns, when it last read and wrote (from [`epoch`]).
#[derive(Debug)]
pub(super) struct Live {
    calls: AtomicU32,
    last_read: AtomicU64,
    last_write: AtomicU64,
}

impl Live {
    pub fn new() -> Live {
        // The epoch precedes every time recorded.
        let _ = epoch();
        Live {
            calls: AtomicU32::new(0),
            last_read: AtomicU64::new(0),
            last_write: AtomicU64::new(0),
        }
    }

    pub fn record(&self, calls: u32, last_read: Instant, last_write: Instant) {
        let since = |at: Instant| at.saturating_duration_since(epoch()).as_nanos() as u64;
        self.calls.store(calls, Ordering::Relaxed);
        self.last_read.store(since(last_read), Ordering::Relaxed);
        self.last_write.store(since(last_write), Ordering::Relaxed);
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The session ends when nothing is heard by then.
    fn reconnect(&self) -> Instant {
        Self::at(&self.last_read) + super::SILENCE
    }

    /// The next heartbeat.
    fn heartbeat(&self) -> Instant {
        Self::at(&self.last_write) + super::HEARTBEAT
    }

    fn at(nanos: &AtomicU64) -> Instant {
        epoch() + std::time::Duration::from_nanos(nanos.load(Ordering::Relaxed))
    }
}

/// Where [`Live`]'s times count from.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// An accepted session's ends: the member's address and ours, and whether through TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Accepted {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ssl: bool,
}

/// An established session (its turns and timers are in [`Live`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SessionView {
    /// Where the session's state lives (HAProxy's appctx pointer).
    pub id: usize,
    /// An accepted session's ends.
    pub accepted: Option<Accepted>,
    /// `PEER_F_*` of the session.
    pub flags: u32,
    /// Our table the member's updates are for, and the last we defined to it.
    pub remote_table: Option<usize>,
    pub last_local_table: Option<usize>,
}

/// A table shared with a member (HAProxy's `struct shared_table`; its `update`, the last
/// the member acknowledged, is the member's `acked`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct SharedView {
    pub remote_id: u64,
    pub remote_data: u64,
    pub last_acked: u32,
    pub last_pushed: u32,
    pub last_get: u32,
    pub teaching_origin: u32,
}

/// The answer to `show peers` with `args` (the words after it).
pub fn show(args: &[&str]) -> String {
    let (dict, args) = match args {
        ["dict", rest @ ..] => (true, rest),
        ["-", rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    let sections = SECTIONS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let target = args.first();
    if let Some(name) = target
        && !sections.iter().any(|s| s.name == *name)
    {
        return "No such peers\n".into();
    }
    let mut out = String::new();
    for section in sections.iter().rev() {
        if target.is_none_or(|name| section.name == *name) {
            // An empty line between sections (the one after the last is the answer's end).
            if !out.is_empty() {
                out.push('\n');
            }
            dump_section(section, dict, &mut out);
        }
    }
    out
}

/// HAProxy's `human_time` of what remains until `at`, or `<PAST>`.
fn until(at: Instant, now: Instant) -> String {
    match at.checked_duration_since(now) {
        Some(d) if !d.is_zero() => crate::runtime::api::human_time(d.as_secs()),
        _ => "<PAST>".into(),
    }
}

fn dump_section(section: &Arc<Section>, dict: bool, out: &mut String) {
    let now = Instant::now();
    let since = (section.started.duration_since(std::time::UNIX_EPOCH)).unwrap_or_default();
    let deadline = *section
        .resync_deadline
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let _ = writeln!(
        out,
        "{:p}: [{}] id={} disabled=0 flags=0x{:x} resync_timeout={} task_calls={}",
        Arc::as_ptr(section),
        crate::runtime::log::LocalDate(since.as_secs()),
        section.name,
        section_flags(section),
        until(deadline, now),
        section.task_calls.load(Ordering::Relaxed),
    );
    for member in section.members.iter().rev() {
        dump_member(section, member, dict, now, out);
    }
}

/// The section's `PEERS_F_*` bits: its state now, and the events seen.
fn section_flags(section: &Section) -> u32 {
    let mut flags = section.events.load(Ordering::Relaxed);
    if !section.waiting_local.load(Ordering::Relaxed) {
        flags |= RESYNC_LOCAL;
    }
    if section.resynced.load(Ordering::Relaxed) {
        flags |= RESYNC_REMOTE;
    }
    if section.learning.load(Ordering::Relaxed) {
        flags |= RESYNC_ASSIGN | RESYNC_PROCESS;
    }
    if *section.stopping.borrow() && super::LESSONS.load(Ordering::SeqCst) > 0 {
        flags |= DO_NOT_STOP;
    }
    flags
}

fn dump_member(
    section: &Section,
    member: &Arc<super::Remote>,
    dict: bool,
    now: Instant,
    out: &mut String,
) {
    let local = Arc::ptr_eq(member, &section.local);
    // Before this member's stats are locked: it locks every member's.
    let commit = commit_updates(section);
    let acked = (member.acked.lock())
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let st = member.stats.lock().unwrap_or_else(|e| e.into_inner());
    let session = st.session;
    let addr = member
        .addr
        .map_or_else(|| "-".to_string(), |a| a.to_string());
    let _ = writeln!(
        out,
        "  {:p}: id={}({},{}) addr={addr} last_status={} last_hdshk={}",
        Arc::as_ptr(member),
        member.name,
        if local { "local" } else { "remote" },
        if session.is_some() {
            "active"
        } else {
            "inactive"
        },
        status_text(st.status),
        (st.last_hdshk).map_or("<NEVER>".into(), |at| crate::runtime::api::human_time(
            now.saturating_duration_since(at).as_secs()
        )),
    );
    let reconnect = session.map(|_| member.live.reconnect()).or(st.reconnect);
    let _ = writeln!(
        out,
        // `confirm` counts the lesson's ends whose confirmation is not sent yet: hapx
        // writes it with what it answers to that end, before it reports anything.
        "        reconnect={} heartbeat={} confirm=0 tx_hbt={} rx_hbt={} no_hbt={} new_conn={} proto_err={} coll={}",
        reconnect.map_or("<NEVER>".into(), |at| until(at, now)),
        session.map_or("<NEVER>".into(), |_| until(member.live.heartbeat(), now)),
        st.tx_hbt,
        st.rx_hbt,
        st.no_hbt,
        st.new_conn,
        st.proto_err,
        st.coll,
    );
    let mut flags = session.map_or(0, |s| s.flags);
    if member.not_up_to_date.load(Ordering::Relaxed) {
        flags |= LEARN_NOT_UP_TO_DATE;
    }
    if local && section.teacher_live.load(Ordering::SeqCst) {
        flags |= TEACH_COMPLETE;
    }
    let _ = write!(out, "        flags=0x{flags:x}");
    if let Some(s) = session {
        let _ = write!(
            out,
            " appctx:0x{:x} st0=7 st1=0 task_calls={} state=EST",
            s.id,
            member.live.calls()
        );
        if let Some(Accepted { src, dst, ssl }) = s.accepted {
            let xprt = if ssl { "SSL" } else { "RAW" };
            let _ = write!(out, "\n        xprt={xprt} src={src} addr={dst}");
        }
        for (what, table) in [
            ("remote_table", s.remote_table),
            ("last_local_table", s.last_local_table),
        ] {
            let Some(i) = table else { continue };
            let (Some(t), Some(v)) = (section.tables.get(i), st.tables.get(i)) else {
                continue;
            };
            let _ = write!(
                out,
                "\n        {what}:{:p} id={} local_id={} remote_id={}",
                v,
                t.name,
                i + 1,
                v.remote_id
            );
        }
    }
    if !section.tables.is_empty() {
        out.push_str("\n        shared tables:");
        for (i, (t, v)) in section.tables.iter().zip(&st.tables).enumerate().rev() {
            let learned = section.learned[i].load(Ordering::Relaxed);
            let acked = acked.get(i).copied().unwrap_or(0);
            dump_shared(t, v, (i + 1, learned, acked), commit[i], out);
            match dict {
                true => dump_dicts(&member.dicts.lock().unwrap_or_else(|e| e.into_inner()), out),
                false => {
                    out.push_str("\n        Dictionary cache not dumped (use \"show peers dict\")")
                }
            }
        }
    }
    out.push('\n');
}

/// Per table, the last change pushed to any member (HAProxy's `commitupdate`).
fn commit_updates(section: &Section) -> Vec<u32> {
    let mut commit = vec![0u32; section.tables.len()];
    for m in &section.members {
        let st = m.stats.lock().unwrap_or_else(|e| e.into_inner());
        for (c, v) in commit.iter_mut().zip(&st.tables) {
            *c = (*c).max(v.last_pushed);
        }
    }
    commit
}

/// A shared table: `id` is its number here, `learned` the entries members gave it.
fn dump_shared(
    t: &Arc<Table>,
    v: &SharedView,
    (id, learned, acked): (usize, u64, u32),
    commit: u32,
    out: &mut String,
) {
    let local = t.local_update() as u32;
    let update = local.wrapping_add(learned as u32);
    let _ = write!(
        out,
        "\n          {v:p} local_id={id} remote_id={} flags=0x0 remote_data=0x{:x}\
         \n              last_acked={} last_pushed={} last_get={} teaching_origin={} update={}\
         \n              table:{:p} id={} update={update} localupdate={local} commitupdate={commit} refcnt=1",
        v.remote_id,
        v.remote_data,
        v.last_acked,
        v.last_pushed,
        v.last_get,
        v.teaching_origin,
        acked,
        Arc::as_ptr(t),
        t.name,
    );
}

/// The member's dictionary caches, HAProxy's four entries a line: the names sent, up to
/// the first id not used, then every id received.
fn dump_dicts(dicts: &Dicts, out: &mut String) {
    out.push_str("\n        TX dictionary cache:");
    let sent = dicts.tx.iter().map_while(|name| name.as_deref());
    dump_dict(sent, out);
    out.push_str("\n        RX dictionary cache:");
    let received = dicts.rx.iter().map(|name| name.as_deref().unwrap_or("-"));
    dump_dict(received, out);
}

fn dump_dict<'a>(names: impl Iterator<Item = &'a str>, out: &mut String) {
    for (i, name) in names.enumerate() {
        if i % 4 == 0 {
            out.push_str("\n        ");
        }
        let _ = write!(out, "  {i:3} -> {name}");
    }
}

/// HAProxy's four letters for a status.
fn status_text(status: u32) -> &'static str {
    match status {
        CONNECTING => "CONN",
        CONNECTED => "HSHK",
        200 => "ESTA",
        300 => "RETR",
        501 => "PROT",
        502 => "VERS",
        503 => "NAME",
        504 => "UNKN",
        _ => "NONE",
    }
}

//! Password hashes checked by the system's libcrypt, as HAProxy checks `userlist` passwords.
//!
//! HAProxy 2.6 calls `crypt_r(pass, hash)` and accepts when the result is the configured hash
//! (`ep && strcmp(ep, u->pass) == 0`). On Debian 12 that libcrypt is libxcrypt 4.4, which
//! knows every format `mkpasswd` writes: yescrypt `$y$` (its default), gost-yescrypt `$gy$`,
//! scrypt `$7$`, bcrypt `$2b$`/`$2a$`/`$2y$`, SHA-512/256 crypt `$6$`/`$5$`, MD5 `$1$`, SunMD5,
//! NT `$3$`, BSDi and traditional DES. hapx calls the same library, so that exactly the
//! passwords HAProxy takes are taken:
//!
//! - [`verify`]: `crypt_rn` (thread-safe, no global state) into a per-thread work area, then
//!   a constant-time comparison with the hash. A hash libcrypt refuses (it returns NULL)
//!   never matches, as HAProxy's failure token `*0`/`*1` never equals the configured hash.
//! - [`precheck`]: the same check on a blocking thread, awaited, its verdict pinned for
//!   [`verify`] while the request's rules run: a slow hash does not stall the worker thread.
//! - [`checkable`]: `crypt_checksalt`, asked at load time, so that a hash no libcrypt method
//!   can check is warned about once instead of failing silently at every login.
//!
//! Linking: `-lcrypt`. `libcrypt.so` comes with libcrypt-dev, which libc6-dev depends on, so
//! every machine that builds Rust with gcc as its linker has it; libcrypt1 (the run-time
//! library) is essential on Debian; `crypt_rn` and `crypt_checksalt` are libxcrypt's (4.3 and
//! later), not glibc's old libcrypt's. This module is the crate's only foreign code.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// `sizeof(struct crypt_data)` in libxcrypt 4.4's `<crypt.h>`: output (384), setting
/// (384), input (512), reserved (767), initialized (1) and internal (30720) bytes.
const CRYPT_DATA_SIZE: usize = 32768;

/// `crypt_checksalt`'s answers (`<crypt.h>`) for a hash no enabled method checks.
const CRYPT_SALT_INVALID: c_int = 1;
const CRYPT_SALT_METHOD_DISABLED: c_int = 2;

#[link(name = "crypt")]
unsafe extern "C" {
    fn crypt_rn(
        phrase: *const c_char,
        setting: *const c_char,
        data: *mut c_void,
        size: c_int,
    ) -> *mut c_char;
    fn crypt_checksalt(setting: *const c_char) -> c_int;
}

thread_local! {
    /// One work area per thread: libxcrypt's `struct crypt_data` is 32 KiB, too big for an
    /// async task's stack and too costly to allocate per check. Zeroed, as libxcrypt wants it
    /// before first use; it may be reused for any number of calls afterwards.
    static WORK_AREA: RefCell<Box<[u8]>> =
        RefCell::new(vec![0u8; CRYPT_DATA_SIZE].into_boxed_slice());
}

/// Whether `password` hashes to `hash` under crypt(3), with HAProxy's semantics: the bytes
/// up to the first NUL of each count (C strings), and a hash libcrypt refuses never matches.
///
/// Where the time goes. What a check costs (release build, this 2-core machine,
/// `cargo bench -p hapx-proxy --bench crypt`): yescrypt ~15 ms, bcrypt cost 5 ~1.4 ms,
/// SHA-512 crypt ~1 ms, MD5 crypt ~0.1 ms. hapx's sample fetches and ACLs are evaluated
/// synchronously (as HAProxy's are), on worker threads that each run many connections, so a
/// hash computed here stalls every connection of that thread. Two things keep it from
/// happening:
/// - the HTTP path calls [`precheck`] before it runs a request's rules: the hash is computed
///   on a blocking thread while the worker serves others, and its verdict stays pinned (see
///   [`Held`]) while the request's rules run, so that this function finds it;
/// - since the outcome depends on `(password, hash)` alone, each thread remembers its last
///   few successful checks ([`Remembered`]): a kept-alive client sending the same credentials
///   on every request, and the several ACLs of one request using `http_auth`, pay for one
///   hash, where HAProxy pays for one per evaluation. Failed checks are not remembered past
///   their request: each wrong password costs a full hash, as in HAProxy.
///
/// Only what neither covers (a fetch in a log format, credentials a rule rewrote) is hashed
/// here, inline.
pub fn verify(password: &[u8], hash: &str) -> bool {
    let password = until_nul(password);
    if REMEMBERED.with_borrow(|r| r.holds(password, hash)) {
        return true;
    }
    if let Some(matched) = PINNED.with_borrow(|p| p.verdict(password, hash)) {
        return matched;
    }
    let matched = crypt_matches(password, hash);
    if matched {
        REMEMBERED.with_borrow_mut(|r| r.insert(password, hash));
    }
    matched
}

/// Checks `password` against `hash` on a blocking thread, so that the worker thread serves
/// its other connections meanwhile, and pins the verdict on this thread for [`verify`] until
/// the returned [`Held`] is dropped. None when there is nothing to pin: the success is
/// remembered already, or the blocking thread failed (then [`verify`] hashes inline).
///
/// At most [`hashers`] hashes run at once in the whole process; more requests wait, as
/// parked futures, for their turn. Why a bound: a hash is CPU work (and yescrypt's takes
/// megabytes of memory), so more of them at once than there are cores finish no sooner, and
/// without one a brute force would make tokio's blocking pool grow to its default of 512
/// threads per runtime. With it, each runtime's pool holds at most that many threads (a pool
/// starts a thread only when a task waits and none is idle; idle ones exit after 10 s).
pub async fn precheck(password: &[u8], hash: &str) -> Option<Held> {
    let password = until_nul(password);
    if REMEMBERED.with_borrow(|r| r.holds(password, hash)) {
        return None;
    }
    if let Some(held) = PINNED.with_borrow_mut(|p| p.hold(password, hash)) {
        return Some(held);
    }
    let permit = hashers().clone().acquire_owned().await.ok()?;
    let (phrase, setting) = (Zeroizing::new(password.to_vec()), hash.to_string());
    // The permit goes with the hash: a request dropped while it waits frees no slot early.
    let matched = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        crypt_matches(&phrase, &setting)
    })
    .await
    .ok()?;
    if matched {
        REMEMBERED.with_borrow_mut(|r| r.insert(password, hash));
    }
    Some(PINNED.with_borrow_mut(|p| p.pin(password, hash, matched)))
}

/// How many hashes [`precheck`] runs at once in the process: one per core.
fn hashers() -> &'static Arc<Semaphore> {
    static HASHERS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    HASHERS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Arc::new(Semaphore::new(cores))
    })
}

/// How many successful checks each thread remembers.
const REMEMBER: usize = 8;

thread_local! {
    static REMEMBERED: RefCell<Remembered> = const { RefCell::new(Remembered(Vec::new())) };
    static PINNED: RefCell<Pinned> = const { RefCell::new(Pinned { verdicts: Vec::new(), next: 0 }) };
}

/// A thread's last successful `(password, hash)` checks, newest first. A match in here tells
/// an attacker nothing the 200 it then gets does not. The passwords are zeroed when they
/// leave (`Zeroizing`), so that freed memory does not keep them.
#[derive(Debug)]
struct Remembered(Vec<(Zeroizing<Vec<u8>>, String)>);

impl Remembered {
    /// Every entry is compared in constant time: no timing tells how much of a guess matches
    /// a remembered password.
    fn holds(&self, password: &[u8], hash: &str) -> bool {
        self.0.iter().fold(false, |found, (p, h)| {
            found | (h == hash && constant_time_eq(p, password))
        })
    }

    fn insert(&mut self, password: &[u8], hash: &str) {
        self.0.truncate(REMEMBER - 1);
        self.0
            .insert(0, (Zeroizing::new(password.to_vec()), hash.to_string()));
    }
}

/// The verdicts [`precheck`] computed for requests still being evaluated on this thread.
#[derive(Debug)]
struct Pinned {
    verdicts: Vec<Verdict>,
    next: u64,
}

#[derive(Debug)]
struct Verdict {
    id: u64,
    password: Zeroizing<Vec<u8>>,
    hash: String,
    matched: bool,
    /// The [`Held`]s that keep it.
    holders: usize,
}

impl Pinned {
    fn find(&self, password: &[u8], hash: &str) -> Option<usize> {
        (self.verdicts.iter())
            .position(|v| v.hash == hash && constant_time_eq(&v.password, password))
    }

    fn verdict(&self, password: &[u8], hash: &str) -> Option<bool> {
        self.find(password, hash).map(|i| self.verdicts[i].matched)
    }

    fn hold(&mut self, password: &[u8], hash: &str) -> Option<Held> {
        let i = self.find(password, hash)?;
        let v = &mut self.verdicts[i];
        v.holders += 1;
        Some(Held { id: v.id })
    }

    fn pin(&mut self, password: &[u8], hash: &str, matched: bool) -> Held {
        if let Some(held) = self.hold(password, hash) {
            return held;
        }
        let id = self.next;
        self.next += 1;
        self.verdicts.push(Verdict {
            id,
            password: Zeroizing::new(password.to_vec()),
            hash: hash.to_string(),
            matched,
            holders: 1,
        });
        Held { id }
    }

    fn release(&mut self, id: u64) {
        if let Some(i) = self.verdicts.iter().position(|v| v.id == id) {
            self.verdicts[i].holders -= 1;
            if self.verdicts[i].holders == 0 {
                self.verdicts.swap_remove(i);
            }
        }
    }
}

/// Keeps a [`precheck`] verdict where [`verify`] finds it, on the thread that computed it,
/// until dropped (when the request's rules have run). Every hapx runtime is a
/// current-thread one, so a request's future, and this with it, never changes threads;
/// dropped on another thread it would find nothing to release there, and the verdict would
/// stay pinned (a leak, not a wrong answer).
#[derive(Debug)]
#[must_use = "the verdict is unpinned when this is dropped"]
pub struct Held {
    id: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        // `try_with`: a thread being torn down has no verdicts left to release.
        let _ = PINNED.try_with(|p| p.borrow_mut().release(self.id));
    }
}

/// crypt(3) itself: whether `crypt_rn(password, hash)` gives `hash` back.
fn crypt_matches(password: &[u8], hash: &str) -> bool {
    let (phrase, setting) = (c_phrase(password), c_string(hash.as_bytes()));
    WORK_AREA.with_borrow_mut(|area| {
        // SAFETY: `phrase` and `setting` are NUL-terminated strings that outlive the call;
        // `area` is a writable, exclusively borrowed buffer of `CRYPT_DATA_SIZE` bytes
        // (`sizeof(struct crypt_data)`, whose members are all `char`: no alignment needed),
        // zeroed at creation and only ever written by libxcrypt since. `crypt_rn` touches no
        // global state and writes nothing beyond `size` bytes of `data`.
        let out = unsafe {
            crypt_rn(
                phrase.as_ptr().cast(),
                setting.as_ptr(),
                area.as_mut_ptr().cast(),
                CRYPT_DATA_SIZE as c_int,
            )
        };
        if out.is_null() {
            return false;
        }
        // SAFETY: not NULL, `crypt_rn` returned a NUL-terminated string inside `area`, which
        // stays borrowed (so unchanged) while the comparison reads it.
        let computed = unsafe { CStr::from_ptr(out) };
        constant_time_eq(computed.to_bytes(), setting.to_bytes())
    })
}

/// The password as the C string crypt(3) reads, zeroed when dropped.
fn c_phrase(password: &[u8]) -> Zeroizing<Vec<u8>> {
    let password = until_nul(password);
    let mut phrase = Zeroizing::new(Vec::with_capacity(password.len() + 1));
    phrase.extend_from_slice(password);
    phrase.push(0);
    phrase
}

/// Whether libcrypt has a method that can check `hash` (`crypt_checksalt`): false for
/// unknown prefixes and malformed salts, which then never match.
pub fn checkable(hash: &str) -> bool {
    let setting = c_string(hash.as_bytes());
    // SAFETY: `setting` is a NUL-terminated string that outlives the call;
    // `crypt_checksalt` only reads it and keeps no pointer to it.
    let verdict = unsafe { crypt_checksalt(setting.as_ptr()) };
    !matches!(verdict, CRYPT_SALT_INVALID | CRYPT_SALT_METHOD_DISABLED)
}

/// `bytes` up to the first NUL, as C reads them.
fn until_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// [`until_nul`] as a C string.
fn c_string(bytes: &[u8]) -> CString {
    CString::new(until_nul(bytes)).expect("no NUL left before the end")
}

/// Compares without an early exit, so that the time taken does not tell how many leading
/// bytes of a computed hash were right. Lengths are public (the configured hash's).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes of "secret" as `mkpasswd -m METHOD secret` (whois 5.5, libxcrypt 4.4) and
    /// `openssl passwd` wrote them.
    const SECRET: [&str; 12] = [
        "$y$j9T$wCufrxAmPbBvDApvsHPNO1$9Drr3Mh/uaMC0M/weKRs036rA95XAluNMMfFOxks898",
        "$gy$j9T$wyYa37xxKb4D7dwwjU.Y1.$x020tF93kCbLYVf824SPhUbIasJoe5UaT1z4jqRBZi1",
        "$7$CU..../....xeDMiQvHvCm37/b.DxpVM1$uKEV9tkV9rWTjmFBVOsBCiJ8hJh7tlIbY2qb8X.GcbD",
        "$2b$05$/q6NMNAkuZhbIasJRRhRVOY7np4YvOSdPgu76bbeKOVpmwlY26Kay",
        "$2a$05$rhurJq/QAUfJgb7Inum7eeFur9zMMM3kfyK8RSE0soSmctFWxyLE.",
        "$6$o2QWHPWCR3of/U4n$zMtR/on7Yg6/GsAr.p/WvZWf6Hia3wG9/ncqI0vnCS.id3KmeO5AXKxQE1H/PJyKNxCP2IO6CkkC5FT64iVVN/",
        "$5$sGJqDYxrW65k4Xev$LqtIrfR/Ty1RPQtUAd4jdBucI3fPASbNyL.2ffAc7j8",
        "$md5,rounds=40595$SIZqs9z3$$K7JvwqK9pScQfCphslpBB/",
        "$1$xj5k94b3$AUQNG3X2LyFndxW/X81cP.",
        "_J9..6cMmR9PmhqI8b0E",
        "T8iaakdT.IriQ",
        "$3$$878d8014606cda29677a44efa1353fc7",
    ];

    #[test]
    fn every_format_libxcrypt_writes_is_checked() {
        for hash in SECRET {
            assert!(checkable(hash), "{hash}");
            assert!(verify(b"secret", hash), "{hash}");
            assert!(!verify(b"Secret", hash), "{hash}");
        }
    }

    #[test]
    fn refused_hashes_never_match_and_are_flagged() {
        for hash in [
            "$9$nothing",
            "",
            "*0",
            "$6$saltsalt$garbage!!",
            "sa:bCdEfGhIjK",
        ] {
            assert!(!checkable(hash), "{hash:?}");
            assert!(!verify(b"secret", hash), "{hash:?}");
            assert!(!verify(b"", hash), "{hash:?}");
        }
        // Well-formed but not what "secret" gives: checkable, never matching.
        let wrong = "$1$saltsalt$9xy1btjgzLYfb7hivXtC/.";
        assert!(checkable(wrong) && !verify(b"secret", wrong));
        // A hash with extra bytes is not the one crypt(3) computes.
        assert!(!verify(b"secret", "$1$xj5k94b3$AUQNG3X2LyFndxW/X81cP.x"));
    }

    #[test]
    fn passwords_end_at_a_nul_as_c_strings_do() {
        assert!(verify(b"secret\0ignored", SECRET[5]));
        // Traditional DES reads 8 characters only, in HAProxy as here: `crypt("password", "sa")`.
        assert!(verify(b"passwordXYZ", "sa3tHJ3/KuYvI"));
    }

    #[test]
    fn remembered_matches_stay_exact() {
        let (yescrypt, sha512) = (SECRET[0], SECRET[5]);
        for _ in 0..2 {
            assert!(verify(b"secret", yescrypt));
            assert!(
                !verify(b"secre", yescrypt),
                "a prefix of a remembered password"
            );
            assert!(!verify(b"secret!", yescrypt));
            assert!(!verify(b"secret", sha512.replace("zMtR", "zMtS").as_str()));
        }
        // Older matches give way to newer ones, and are checked afresh after that.
        for hash in SECRET {
            assert!(verify(b"secret", hash));
        }
        REMEMBERED.with_borrow(|r| {
            assert_eq!(r.0.len(), REMEMBER);
            assert!(!r.holds(b"secret", yescrypt) && r.holds(b"secret", SECRET[11]));
        });
        assert!(verify(b"secret", yescrypt));
        REMEMBERED.with_borrow(|r| assert!(r.holds(b"secret", yescrypt)));
    }

    /// Verdicts computed off the thread are what `verify` then answers, on this thread, while
    /// held; wrong ones are forgotten once released, right ones remembered.
    #[test]
    fn prechecked_verdicts_are_pinned_while_held() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let sha256 = SECRET[6];
        rt.block_on(async {
            let pinned = |p: &[u8]| PINNED.with_borrow(|pins| pins.verdict(p, sha256));
            let wrong = precheck(b"wrong\0ignored", sha256).await.expect("pinned");
            let again = precheck(b"wrong", sha256).await.expect("pinned");
            assert_eq!(pinned(b"wrong"), Some(false));
            assert!(!verify(b"wrong", sha256));
            PINNED
                .with_borrow(|pins| assert_eq!(pins.verdicts.len(), 1, "one verdict, held twice"));
            drop(wrong);
            assert_eq!(pinned(b"wrong"), Some(false), "still held once");
            drop(again);
            assert_eq!(pinned(b"wrong"), None);
            let right = precheck(b"secret", sha256).await;
            assert!(right.is_some() && verify(b"secret", sha256));
            drop(right);
            assert_eq!(pinned(b"secret"), None);
            REMEMBERED.with_borrow(|r| assert!(r.holds(b"secret", sha256)));
            assert!(
                precheck(b"secret", sha256).await.is_none(),
                "remembered: nothing to pin"
            );
        });
    }

    /// More checks at once than there are hashing slots all finish (the others wait their
    /// turn), with the right verdicts, and every slot comes back.
    #[test]
    fn prechecks_share_a_bounded_pool() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let md5 = SECRET[8];
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        rt.block_on(async {
            let tasks: Vec<_> = (0..4 * cores + 3)
                .map(|i| {
                    tokio::spawn(async move {
                        let guess = format!("guess{i}");
                        let held = precheck(guess.as_bytes(), md5).await;
                        (guess, held)
                    })
                })
                .collect();
            let mut done = Vec::new();
            for task in tasks {
                done.push(task.await.expect("a check"));
            }
            for (guess, held) in &done {
                assert!(held.is_some() && !verify(guess.as_bytes(), md5), "{guess}");
            }
            assert_eq!(hashers().available_permits(), cores);
        });
    }

    #[test]
    fn comparison_is_exact() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}

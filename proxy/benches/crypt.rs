//! What checking a `userlist` password costs, per hash format: a wrong password (every one
//! is hashed afresh, as every check is in HAProxy, which calls the same libcrypt) and the
//! right one again (which each thread remembers, see `hapx_proxy::crypt::verify`). No
//! reference runs here: HAProxy's `check_user` cannot be called alone; `bench/proxy-auth.sh`
//! runs both proxies side by side.
//!
//! Run: `cargo bench -p hapx-proxy --bench crypt` (prints microseconds per check, the best of
//! 5 rounds: the machine's other load only ever adds time).

use std::time::Instant;

use hapx_proxy::crypt::verify;

const ROUNDS: usize = 5;

/// Hashes of "secret" as `mkpasswd -m METHOD secret` wrote them (libxcrypt 4.4 defaults).
const HASHES: [(&str, &str); 6] = [
    (
        "yescrypt",
        "$y$j9T$wCufrxAmPbBvDApvsHPNO1$9Drr3Mh/uaMC0M/weKRs036rA95XAluNMMfFOxks898",
    ),
    (
        "bcrypt",
        "$2b$05$/q6NMNAkuZhbIasJRRhRVOY7np4YvOSdPgu76bbeKOVpmwlY26Kay",
    ),
    (
        "sha512crypt",
        "$6$o2QWHPWCR3of/U4n$zMtR/on7Yg6/GsAr.p/WvZWf6Hia3wG9/ncqI0vnCS.id3KmeO5AXKxQE1H/PJyKNxCP2IO6CkkC5FT64iVVN/",
    ),
    (
        "sha256crypt",
        "$5$sGJqDYxrW65k4Xev$LqtIrfR/Ty1RPQtUAd4jdBucI3fPASbNyL.2ffAc7j8",
    ),
    ("md5crypt", "$1$xj5k94b3$AUQNG3X2LyFndxW/X81cP."),
    ("descrypt", "T8iaakdT.IriQ"),
];

/// Best microseconds per call of `check` over `ROUNDS` rounds of `n` calls.
fn per_check(n: u32, check: impl Fn() -> bool) -> f64 {
    (0..ROUNDS)
        .map(|_| {
            let began = Instant::now();
            for _ in 0..n {
                std::hint::black_box(check());
            }
            began.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    println!(
        "{:<12} {:>14} {:>16}",
        "hash", "wrong us/check", "remembered us"
    );
    for (name, hash) in HASHES {
        // About 0.2 s of hashing per round, whatever the format's cost.
        let once = per_check(1, || verify(b"wrong", hash));
        let n = ((200_000.0 / once) as u32).clamp(1, 10_000);
        let wrong = per_check(n, || !verify(b"wrong", hash));
        assert!(verify(b"secret", hash), "{name}: the right password");
        let remembered = per_check(10_000, || verify(b"secret", hash));
        println!("{name:<12} {wrong:>14.1} {remembered:>16.2}");
    }
}

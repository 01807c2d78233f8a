//! The interactive shell driven through a pseudo-terminal: crmsh's prompt, tab completion of
//! commands and agent names, backslash continuation, history, levels.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hapx_tests::bins;
use hapx_tests::shell::Cib;

/// A pseudo-terminal pair: (controller, terminal).
fn openpty() -> (File, OwnedFd) {
    let mut controller = -1;
    let mut terminal = -1;
    // SAFETY: openpty writes two fresh descriptors into the out-pointers; no name, termios or
    // window size is passed.
    let rc = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created by openpty and are owned by nobody else.
    unsafe {
        (
            File::from_raw_fd(controller),
            OwnedFd::from_raw_fd(terminal),
        )
    }
}

struct Terminal {
    input: File,
    screen: Arc<Mutex<Vec<u8>>>,
    child: std::process::Child,
}

impl Terminal {
    /// Everything printed so far, with escape sequences left in.
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    fn send(&mut self, keys: &str) {
        self.input.write_all(keys.as_bytes()).unwrap();
        self.input.flush().unwrap();
    }

    /// Waits until the screen, after position `from`, contains `text`.
    fn expect(&self, from: usize, text: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if let Some(at) = screen.get(from..).and_then(|s| s.find(text)) {
                return from + at + text.len();
            }
            assert!(
                Instant::now() < deadline,
                "never saw {text:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_terminal_session_completes_continues_and_remembers() {
    let cib = Cib::unfenced("tty");
    let history = cib.dir.join("history");
    let (controller, terminal) = openpty();
    let child = Command::new(bins::path("hapx"))
        .env("CIB_file", &cib.path)
        .env("HAPX_HISTORY", &history)
        .env("TERM", "xterm")
        .stdin(Stdio::from(terminal.try_clone().unwrap()))
        .stdout(Stdio::from(terminal.try_clone().unwrap()))
        .stderr(Stdio::from(terminal))
        .spawn()
        .unwrap();
    let screen = Arc::new(Mutex::new(Vec::new()));
    let mut reader = controller.try_clone().unwrap();
    let sink = Arc::clone(&screen);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut t = Terminal {
        input: controller,
        screen,
        child,
    };

    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let mut at = t.expect(0, &format!("crm(live/{host})# "));
    t.send("configure\r");
    at = t.expect(at, &format!("crm(live/{host})configure# "));
    // Tab completes the command and the agent name.
    t.send("prim\t");
    at = t.expect(at, "primitive ");
    t.send("p1 ocf:pacemaker:Dumm\t");
    at = t.expect(at, "ocf:pacemaker:Dummy ");
    // A trailing backslash continues the command on the next line.
    t.send("op monitor \\\r");
    at = t.expect(at, "> ");
    t.send("interval=10s\r");
    at = t.expect(at, "configure# ");
    t.send("commit\r");
    at = t.expect(at, "configure# ");
    t.send("show p1\r");
    at = t.expect(at, "op monitor interval=10s");
    at = t.expect(at, "configure# ");
    // Up-arrow brings the last command back.
    t.send("\x1b[A\r");
    at = t.expect(at, "op monitor interval=10s");
    t.send("up\r");
    at = t.expect(at, &format!("crm(live/{host})# "));
    t.send("quit\r");
    let _ = at;

    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = t.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "hapx did not quit; screen:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "screen:\n{}", t.screen());
    let text = cib.text();
    assert!(
        text.contains(r#"<op name="monitor" interval="10s" id="p1-monitor-10s"/>"#),
        "{text}"
    );
    let history = std::fs::read_to_string(&history).unwrap();
    assert!(
        history.contains("show p1") && history.contains("commit"),
        "{history}"
    );
}

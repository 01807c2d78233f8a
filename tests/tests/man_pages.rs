//! The checked-in man pages match the command lines they document.

use hapx_tests::man;

#[test]
fn man_pages_are_current() {
    let dir = man::dir();
    let pages = man::render_all().expect("render man pages");
    assert!(pages.iter().any(|p| p.file_name == "hapx.1"));
    assert!(pages.iter().any(|p| p.file_name == "hapx-agents-install.1"));
    if std::env::var_os("HAPX_BLESS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for page in &pages {
            std::fs::write(dir.join(&page.file_name), &page.roff).unwrap();
        }
        return;
    }
    let mut stale = Vec::new();
    for page in &pages {
        let path = dir.join(&page.file_name);
        if std::fs::read(&path).ok().as_deref() != Some(page.roff.as_slice()) {
            stale.push(page.file_name.clone());
        }
    }
    assert!(
        stale.is_empty(),
        "man pages out of date with the CLI: {stale:?}; regenerate with \
         `HAPX_BLESS=1 cargo test -p hapx-tests --test man_pages`"
    );
}

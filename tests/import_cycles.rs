//! The house has one way through: no module of the library imports one that
//! imports it back. `tools/import_cycles.py` reads the imports of `src/` and
//! fails on any circle not listed in `tools/import_cycles.known`; this test
//! runs it. A missing `python3` is a failure, not a skip.

use std::path::Path;
use std::process::Command;

#[test]
fn no_import_circles_in_src() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let out = Command::new(&python)
        .arg(root.join("tools/import_cycles.py"))
        .arg(root.join("src"))
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} (needed to check import circles; install Python 3): {e}")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tools/import_cycles.py found import circles ({}):\n{stdout}{stderr}",
        out.status
    );
    // It read the crate (guards against a checker that sees nothing).
    assert!(
        stdout.contains("import_cycles: ok:") && !stdout.contains(" 0 modules"),
        "unexpected checker output:\n{stdout}{stderr}"
    );
}

/// The checker sees a circle when there is one: two modules importing each
/// other (one through a `mod.rs` re-export, one through `super::`), in a
/// crate of its own; and it passes the same crate once the circle is gone.
#[test]
fn the_checker_finds_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\n").unwrap();
    std::fs::write(
        src.join("a/mod.rs"),
        "mod inner;\npub use inner::Thing;\n// use crate::b::Other; (a comment)\n",
    )
    .unwrap();
    let circle = "use super::super::b::Other;\npub struct Thing(pub Other);\n";
    std::fs::write(src.join("a/inner.rs"), circle).unwrap();
    std::fs::write(
        src.join("b.rs"),
        "pub struct Other;\npub fn f(_: crate::a::Thing) {}\n",
    )
    .unwrap();
    let run = || {
        Command::new("python3")
            .arg(root.join("tools/import_cycles.py"))
            .arg(&src)
            .arg("--known")
            .arg(dir.path().join("none"))
            .output()
            .expect("python3 is needed to check import circles")
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("crate::a::inner -> crate::b")
            && stdout.contains("crate::b -> crate::a::inner"),
        "{stdout}"
    );
    std::fs::write(src.join("a/inner.rs"), "pub struct Thing;\n").unwrap();
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
}

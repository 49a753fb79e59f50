//! The checked-in header must be exactly what cbindgen (pinned in Cargo.toml and
//! scripts/setup.sh) generates from src/ffi today; run `make header` after changing the ABI.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen runs")
        .write(&mut generated);
    let checked_in = std::fs::read(root.join("include/thresher.h")).unwrap();
    assert!(
        generated == checked_in,
        "include/thresher.h is stale: run `make header` and commit it"
    );
}

#[test]
fn header_version_matches_cargo() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(root.join("include/thresher.h")).unwrap();
    let v = env!("CARGO_PKG_VERSION");
    assert!(header.contains(&format!("#define THRESHER_VERSION \"{v}\"")));
    let mut parts = v.split('.');
    for name in ["MAJOR", "MINOR", "PATCH"] {
        let want = format!("#define THRESHER_VERSION_{name} {}", parts.next().unwrap());
        assert!(header.contains(&want), "missing {want}");
    }
    assert!(header.contains(&format!(
        "#define THRESHER_ABI_VERSION {}",
        thresher::ffi::THRESHER_ABI_VERSION
    )));
}

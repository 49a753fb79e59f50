//! The checked-in header must be exactly what cbindgen (pinned in Cargo.toml) generates from
//! src/ffi today, with the version macros from Cargo.toml. `make header` runs this test with
//! THRESHER_BLESS=1, which writes the header instead of comparing it.

use std::path::Path;

/// The version block after the includes: the one place the header's version comes from.
fn version_macros() -> String {
    let v = env!("CARGO_PKG_VERSION");
    format!(
        "\n/** The library version this header belongs to; equals thresher_version() and \
         Cargo.toml. */\n#define THRESHER_VERSION \"{v}\"\n\n#define THRESHER_VERSION_MAJOR {}\n\n\
         #define THRESHER_VERSION_MINOR {}\n\n#define THRESHER_VERSION_PATCH {}",
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
    )
}

fn generate() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config = cbindgen::Config::from_file(root.join("cbindgen.toml")).unwrap();
    config.after_includes = Some(version_macros());
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen runs")
        .write(&mut generated);
    generated
}

#[test]
fn header_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/thresher.h");
    let generated = generate();
    if std::env::var_os("THRESHER_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read(&path).unwrap();
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

//! The checked-in header must be exactly what cbindgen (pinned in Cargo.toml) generates from
//! src/ffi with cbindgen.toml, and its version macros must be Cargo.toml's. `make header` runs
//! this test with THRESHER_BLESS=1: it rewrites cbindgen.toml's version block from Cargo.toml,
//! then writes the header, instead of comparing.

use std::path::Path;

/// cbindgen.toml's `after_includes`: the version macros, from Cargo.toml.
fn version_block() -> String {
    format!(
        "after_includes = \"\"\"\n\n/** The library version this header belongs to; equals \
         thresher_version() and Cargo.toml. */\n#define THRESHER_VERSION \"{}\"\n\n\
         #define THRESHER_VERSION_MAJOR {}\n\n#define THRESHER_VERSION_MINOR {}\n\n\
         #define THRESHER_VERSION_PATCH {}\"\"\"",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_PATCH"),
    )
}

/// Replaces the `after_includes = """…"""` block of cbindgen.toml's text.
fn with_version_block(toml: &str) -> String {
    let start = toml
        .find("after_includes = \"\"\"")
        .expect("cbindgen.toml has an after_includes block");
    let body = start + "after_includes = \"\"\"".len();
    let end = body + toml[body..].find("\"\"\"").expect("the block is closed") + 3;
    format!("{}{}{}", &toml[..start], version_block(), &toml[end..])
}

fn generate(root: &Path) -> Vec<u8> {
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).unwrap();
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
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let toml_path = root.join("cbindgen.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    if std::env::var_os("THRESHER_BLESS").is_some() {
        std::fs::write(&toml_path, with_version_block(&toml)).unwrap();
        std::fs::write(root.join("include/thresher.h"), generate(root)).unwrap();
        return;
    }
    assert!(
        toml == with_version_block(&toml),
        "cbindgen.toml's version block is not Cargo.toml's version: run `make header`"
    );
    let checked_in = std::fs::read(root.join("include/thresher.h")).unwrap();
    assert!(
        generate(root) == checked_in,
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

#[test]
fn the_version_block_is_replaced_whole() {
    let toml = "a = 1\nafter_includes = \"\"\"\n#define THRESHER_VERSION \"9.9.9\"\"\"\"\nb = 2\n";
    let out = with_version_block(toml);
    assert!(out.starts_with("a = 1\nafter_includes"));
    assert!(out.ends_with("\nb = 2\n"));
    assert!(!out.contains("9.9.9"));
    assert!(out.contains(&format!("\"{}\"", env!("CARGO_PKG_VERSION"))));
}

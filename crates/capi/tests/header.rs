//! include/camhub.h is what cbindgen makes of src/lib.rs: the C API and its header never drift.
//! `CAMHUB_BLESS=1 cargo test -p camhub-capi --test header` rewrites it after a change.

use std::path::Path;

#[test]
fn the_header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut made = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen reads src/lib.rs")
        .write(&mut made);
    let path = dir.join("include/camhub.h");
    if std::env::var_os("CAMHUB_BLESS").is_some() {
        std::fs::write(&path, &made).expect("write include/camhub.h");
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == made,
        "include/camhub.h is not what cbindgen makes of src/lib.rs: run \
         CAMHUB_BLESS=1 cargo test -p camhub-capi --test header, and commit it"
    );
}

//! A C plugin built against another ABI version is refused, naming both.

use std::os::unix::fs::PermissionsExt;

use jobs_core::plugin::{self, PluginError, ABI_VERSION};

#[test]
fn a_c_plugin_of_another_abi_version_is_refused_naming_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let other = ABI_VERSION + 7;
    let lib = jobs_plugin_c_example::build(
        dir.path(),
        "libc_example_other_abi.so",
        &[&format!("C_EXAMPLE_ABI_VERSION={other}")],
    )
    .expect("build");
    let err = plugin::load(&lib).expect_err("another ABI version must be refused");
    match &err {
        PluginError::AbiVersion { plugin, host, .. } => {
            assert_eq!((*plugin, *host), (other, ABI_VERSION))
        }
        e => panic!("expected an ABI version error, got {e}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("plugin ABI version {other}")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("this host speaks version {ABI_VERSION}")),
        "{msg}"
    );
    assert!(msg.contains("libc_example_other_abi.so"), "{msg}");
}

#[test]
fn the_c_plugin_loads_with_its_name_version_and_type() {
    let p = crate::support::loaded();
    assert_eq!(p.name, "c-example");
    assert_eq!(p.version, "0.1.0");
    assert_eq!(p.type_name, jobs_plugin_c_example::TYPE);
}

//! `jobctl_plugin.h` says what jobs-core's `abi` module says: a C program
//! that includes the header prints the size and offsets of every struct and
//! every constant, and each must equal the Rust side's. A field or constant
//! changed, added or removed on either side fails here.

use std::fmt::Write as _;
use std::mem::{offset_of, size_of};
use std::process::Command;

use jobs_core::plugin::abi::{
    ByteBuf, HeaderPrefix, PluginHeader, PluginVTable, StrRef, ABI_VERSION, ENTRY_SYMBOL, ERR,
    FRAME_HEAD_LEN, MAGIC, OK, PULL_AGAIN, PULL_BLOCKED, PULL_FINISHED, PULL_LOCATION,
    PULL_NOT_STARTED, PULL_RUNNING, PULL_STATUS_MASK,
};
use jobs_core::{PayloadKind, Stream};

/// One fact: the C expression that prints it, and what Rust says it is.
struct Fact {
    label: String,
    c_print: String,
    rust: String,
}

fn facts() -> Vec<Fact> {
    let mut out = Vec::new();
    let mut number = |label: String, c_expr: String, rust: u64| {
        out.push(Fact {
            c_print: format!("printf(\"%s %llu\\n\", {label:?}, (unsigned long long)({c_expr}));"),
            label,
            rust: rust.to_string(),
        });
    };
    macro_rules! layout {
        ($c:literal, $t:ty, [$($f:ident),* $(,)?]) => {
            number(format!("sizeof {}", $c), format!("sizeof({})", $c), size_of::<$t>() as u64);
            number(
                format!("alignof {}", $c),
                format!("_Alignof({})", $c),
                std::mem::align_of::<$t>() as u64,
            );
            $(
                number(
                    format!("offsetof {}.{}", $c, stringify!($f)),
                    format!("offsetof({}, {})", $c, stringify!($f)),
                    offset_of!($t, $f) as u64,
                );
                number(
                    format!("sizeof {}.{}", $c, stringify!($f)),
                    format!("sizeof((({}*)0)->{})", $c, stringify!($f)),
                    {
                        fn size_of_field<T, F>(_: impl Fn(&T) -> &F) -> usize {
                            size_of::<F>()
                        }
                        size_of_field(|x: &$t| &x.$f) as u64
                    },
                );
            )*
        };
    }
    layout!("jobctl_str", StrRef, [ptr, len]);
    layout!("jobctl_buf", ByteBuf, [ptr, len, cap]);
    layout!(
        "jobctl_header",
        PluginHeader,
        [
            magic,
            abi_version,
            header_size,
            vtable_size,
            reserved,
            plugin_name,
            plugin_version,
            instance,
            vtable,
        ]
    );
    layout!(
        "jobctl_vtable",
        PluginVTable,
        [
            describe,
            location,
            start,
            resumable,
            resume,
            pull,
            status,
            stop,
            free_job,
            free_buf,
            suspend,
            resume_suspended,
        ]
    );
    // The prefix every version shares is the header's start.
    number(
        "offsetof jobctl_header.header_size (prefix)".into(),
        "offsetof(jobctl_header, header_size)".into(),
        offset_of!(HeaderPrefix, header_size) as u64,
    );
    let signed = |v: i32| i64::from(v) as u64;
    for (name, value) in [
        ("JOBCTL_OK", signed(OK)),
        ("JOBCTL_ERR", signed(ERR)),
        ("JOBCTL_PULL_RUNNING", signed(PULL_RUNNING)),
        ("JOBCTL_PULL_BLOCKED", signed(PULL_BLOCKED)),
        ("JOBCTL_PULL_FINISHED", signed(PULL_FINISHED)),
        ("JOBCTL_PULL_AGAIN", signed(PULL_AGAIN)),
        ("JOBCTL_PULL_NOT_STARTED", signed(PULL_NOT_STARTED)),
        ("JOBCTL_PULL_LOCATION", signed(PULL_LOCATION)),
        ("JOBCTL_PULL_STATUS_MASK", signed(PULL_STATUS_MASK)),
        ("JOBCTL_ABI_VERSION", u64::from(ABI_VERSION)),
        ("JOBCTL_FRAME_HEAD_LEN", FRAME_HEAD_LEN as u64),
        ("sizeof(JOBCTL_MAGIC)", MAGIC.len() as u64),
    ] {
        number(name.to_string(), format!("(long long)({name})"), value);
    }
    for (i, stream) in Stream::ALL.iter().enumerate() {
        let name = format!("JOBCTL_STREAM_{}", stream.as_str().to_uppercase());
        number(name.clone(), name, i as u64);
    }
    for kind in PayloadKind::ALL {
        let name = format!("JOBCTL_KIND_{}", kind.as_str().to_uppercase());
        number(name.clone(), name, u64::from(kind.code()));
    }
    for (i, byte) in MAGIC.iter().enumerate() {
        let label = format!("JOBCTL_MAGIC[{i}]");
        number(
            label.clone(),
            format!("(unsigned char)JOBCTL_MAGIC[{i}]"),
            u64::from(*byte),
        );
    }
    out.push(Fact {
        label: "JOBCTL_ENTRY_SYMBOL".into(),
        c_print: "printf(\"JOBCTL_ENTRY_SYMBOL %s\\n\", JOBCTL_ENTRY_SYMBOL);".into(),
        rust: ENTRY_SYMBOL.into(),
    });
    out
}

#[test]
fn the_c_header_matches_the_rust_definitions() {
    let facts = facts();
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"jobctl_plugin.h\"\n\
         /* The entry point's declared type. */\n\
         static const jobctl_header *(*const entry)(void) = jobs_plugin_header;\n\
         int main(void) {\n    (void)entry;\n",
    );
    for f in &facts {
        writeln!(c, "    {}", f.c_print).expect("write");
    }
    c.push_str("    return 0;\n}\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("check.c");
    let exe = dir.path().join("check");
    std::fs::write(&src, &c).expect("write the C program");
    // The program is linked with no plugin: the entry point is only declared.
    let stub = dir.path().join("stub.c");
    std::fs::write(
        &stub,
        "#include \"jobctl_plugin.h\"\nconst jobctl_header *jobs_plugin_header(void) { return 0; }\n",
    )
    .expect("write the stub");
    jobs_plugin_c_example::cc(&[
        "-o".as_ref(),
        exe.as_os_str(),
        src.as_os_str(),
        stub.as_os_str(),
    ])
    .unwrap_or_else(|e| panic!("{e}\n--- the program ---\n{c}"));
    let out = Command::new(&exe).output().expect("run the check");
    assert!(out.status.success(), "the check failed: {out:?}");
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), facts.len(), "{printed}");
    let mut wrong = Vec::new();
    for (f, line) in facts.iter().zip(&lines) {
        let c_value = line
            .strip_prefix(f.label.as_str())
            .map(str::trim)
            .unwrap_or_else(|| panic!("expected {} first in {line:?}", f.label));
        if c_value != f.rust {
            wrong.push(format!(
                "{}: the header says {c_value}, Rust says {}",
                f.label, f.rust
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "jobctl_plugin.h is out of date:\n{}",
        wrong.join("\n")
    );
}

//! `export_executor!`: the one line a plugin crate writes.

/// Exports an executor as a plugin: defines the library's entry point.
///
/// Write it once at the root of a `cdylib` crate, with an expression that
/// builds the executor (a unit struct's name is one):
///
/// ```
/// use jobs_core::{async_trait, JobContext, JobExecutor, JobFailure, JobSpec};
///
/// /// Says hello to the name in its command.
/// struct Hello;
///
/// #[async_trait]
/// impl JobExecutor for Hello {
///     fn type_name(&self) -> &str { "HelloJob" }
///     async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
///         ctx.output(format!("hello {}", spec.command));
///         Ok(())
///     }
/// }
///
/// jobs_core::export_executor!(Hello);
/// # fn main() {}
/// ```
///
/// (`export_executor!(MyExecutor::new(config))` works as well.)
///
/// The expansion is an `extern "C"` function named `jobs_plugin_header`
/// with `#[no_mangle]`, which the `unsafe_code` lint counts as unsafe (an
/// exported symbol name could clash with another); the expansion allows the
/// lint on that one item, so a plugin crate keeps `unsafe_code = "deny"` and
/// contains no `unsafe` of its own. The attribute is written in this crate's
/// edition, so crates of edition 2024 (where it is spelled
/// `#[unsafe(no_mangle)]`) take it as well.
///
/// Nothing runs when the library is loaded: the function returns a pointer
/// to a static header. The executor is built on the host's first call after
/// the header check.
#[macro_export]
macro_rules! export_executor {
    (@header { $($field:ident : $value:expr),* $(,)? } $make:expr) => {
        const _: () = {
            fn __jobs_plugin_make() -> ::std::sync::Arc<dyn $crate::JobExecutor> {
                ::std::sync::Arc::new($make)
            }
            static __JOBS_PLUGIN_EXPORT: $crate::plugin::Export =
                $crate::plugin::Export::new(__jobs_plugin_make);
            static __JOBS_PLUGIN_HEADER: $crate::plugin::abi::PluginHeader =
                $crate::plugin::abi::PluginHeader {
                    $($field: $value,)*
                    ..$crate::plugin::abi::PluginHeader::new(
                        &__JOBS_PLUGIN_EXPORT,
                        ::core::env!("CARGO_PKG_NAME"),
                        ::core::env!("CARGO_PKG_VERSION"),
                    )
                };
            /// The plugin's entry point: its header.
            #[allow(unsafe_code)]
            #[no_mangle]
            pub extern "C" fn jobs_plugin_header() -> *const $crate::plugin::abi::PluginHeader {
                &__JOBS_PLUGIN_HEADER
            }
        };
    };
    ($make:expr) => {
        $crate::export_executor!(@header {} $make);
    };
}

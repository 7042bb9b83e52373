//! The contract between the kgrade host and the guest `/init`.
//!
//! Both sides depend on this crate so the plan format, the console markers
//! and the list of test cases cannot drift apart.

pub mod catalogue;
pub mod params;
pub mod plan;

pub use catalogue::{cases_for, Case, CATALOGUE};
pub use params::{params_for, ParamKind, ParamSpec, PARAMS};
pub use plan::{
    nonce_header, nonce_tag, split_nonce, Plan, KERNEL_TAG, NONCE_HEADER, NONCE_TAG, PLAN_PATH,
};

/// Printed by the guest on its own line before its KTAP stream.
pub const BEGIN_MARKER: &str = "<<KGRADE-KTAP-BEGIN>>";
/// Printed by the guest on its own line after its KTAP stream.
pub const END_MARKER: &str = "<<KGRADE-KTAP-END>>";

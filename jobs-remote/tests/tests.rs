//! Tests of the RemoteJob executor against real OpenSSH servers.

mod sshd;

mod conformance;
mod hostkeys;
mod netns;
mod pool;
mod remote;

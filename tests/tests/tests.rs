//! End-to-end tests of the real `jobctl` binary, each in its own session home.

mod basics;
mod batch;
mod bytes;
mod crash;
mod daemon;
mod deps;
mod disconnected;
mod events;
mod executables;
mod hosts;
mod lifecycle;
mod load;
mod plugins;
mod receive;
mod remote;
mod remote_input;
mod restart;
mod spread;
mod store;
mod suspend;
mod top;
mod trust;
mod waiting_batch;

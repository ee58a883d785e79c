mod support;

mod conformance;
mod detached;
mod host;
mod output;
mod records;
mod status;
mod stop;

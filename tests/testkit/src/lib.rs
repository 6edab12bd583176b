//! Shared helpers for zt's kernel tests (filled by the kernel test kit work): fresh network
//! namespaces entered by the test's thread, probes that connect as real uids from forked
//! children, echo listeners, a veth-linked peer namespace for inbound traffic, test cgroups,
//! and the mapping from a reference-evaluator verdict to the outcome the kernel must produce.

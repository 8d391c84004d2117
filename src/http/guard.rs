//! Per-hook guard (being written).

//! Public listener (being written).

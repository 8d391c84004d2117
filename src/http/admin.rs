//! Admin listener (being written).

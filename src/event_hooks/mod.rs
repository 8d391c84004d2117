//! Event hooks (being written).

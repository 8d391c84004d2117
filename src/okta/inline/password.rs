//! password inline hook: request data types (being written).

//! What people and machines read: the GitHub Actions runner protocol
//! (`actions`), progress on stderr (`progress`) and words in messages
//! (`text`).

pub mod actions;
pub mod progress;
pub mod text;

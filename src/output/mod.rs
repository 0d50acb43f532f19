//! What people and machines read: the GitHub Actions runner protocol
//! (`actions`), progress on stderr (`progress`), the debug log on stderr
//! (`log`) and words in messages (`text`).

pub mod actions;
pub mod log;
pub mod progress;
pub mod text;

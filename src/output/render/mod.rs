//! The text, Actions outputs and step summary of each report.

pub mod audit;
pub mod build;
pub mod deploy;
pub mod notes;
pub mod promote;
pub mod release;
pub mod supply;
mod tag;

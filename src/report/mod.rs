//! Reports: figures and tables from results files, for the notebooks (inline), the book
//! (Markdown + SVG) and the paper (LaTeX + PNG at print resolution). Reads only results.

pub mod exp1;
pub mod plots;
pub mod tables;

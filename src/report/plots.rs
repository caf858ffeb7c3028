//! Figures with plotters: labelled axes with units, a legend, error bars where there are
//! seeds. One drawing function per figure, rendered to any backend (SVG for the book, PNG for
//! the paper, inline SVG for evcxr notebooks).

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// A line with optional per-point error bars.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    /// (x, y, y_lo, y_hi)
    pub points: Vec<(f64, f64, f64, f64)>,
    /// Index into [`COLORS`]: reports give each condition one colour, the same in every figure.
    pub color: usize,
    /// Dashed: a reference (an n-gram baseline), not a model's curve.
    pub dashed: bool,
}

/// A figure as data: drawn the same way to SVG (book), PNG (paper) and inline (notebook).
#[derive(Clone, Debug)]
pub enum Figure {
    Lines {
        title: String,
        x_label: String,
        y_label: String,
        series: Vec<Series>,
    },
    /// Bars start at zero: their length is the value.
    Bars {
        title: String,
        y_label: String,
        groups: Vec<String>,
        series: Vec<BarSeries>,
    },
}

impl Figure {
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, scale: f64) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        match self {
            Figure::Lines {
                title,
                x_label,
                y_label,
                series,
            } => line_chart(root, title, x_label, y_label, series, scale),
            Figure::Bars {
                title,
                y_label,
                groups,
                series,
            } => grouped_bars(root, title, y_label, groups, series, scale),
        }
    }
}

/// One bar per group: a label and (mean, lo, hi) per group.
pub type BarSeries = (String, Vec<(f64, f64, f64)>);

/// Palette that survives greyscale printing reasonably (Okabe-Ito).
pub const COLORS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

fn bounds(series: &[Series]) -> (f64, f64, f64, f64) {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, _, lo, hi) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(lo);
        y1 = y1.max(hi);
    }
    let pad = ((y1 - y0) * 0.08).max(1e-3);
    // Room at the top for the legend (upper right, a line per series) above the data, and at
    // the sides for the first and last points' markers.
    let legend = (y1 - y0) * 0.055 * series.len() as f64;
    let x_pad = (x1 - x0) * 0.02;
    let left = if x0 >= 0.0 {
        (x0 - x_pad).max(0.0)
    } else {
        x0 - x_pad
    };
    (left, x1.max(x0 + 1e-9) + x_pad, y0 - pad, y1 + pad + legend)
}

/// Line chart of several series (e.g. validation loss against training tokens).
pub fn line_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    scale: f64,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing {title}: {e:?}");
    root.fill(&WHITE).map_err(e)?;
    let (x0, x1, y0, y1) = bounds(series);
    let font = |s: f64| ("sans-serif", (s * scale) as u32).into_font();
    let mut chart = ChartBuilder::on(root)
        .caption(title, font(20.0))
        .margin((12.0 * scale) as u32)
        .x_label_area_size((44.0 * scale) as u32)
        .y_label_area_size((64.0 * scale) as u32)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(e)?;
    let x_fmt = |v: &f64| {
        if (x1 - x0).abs() >= 10.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    chart
        .configure_mesh()
        .x_label_formatter(&x_fmt)
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(font(13.0))
        .axis_desc_style(font(15.0))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    for s in series {
        let c = COLORS[s.color % COLORS.len()];
        let style =
            ShapeStyle::from(&c).stroke_width(((if s.dashed { 1.5 } else { 2.0 }) * scale) as u32);
        let pts = s.points.iter().map(|p| (p.0, p.1));
        let drawn = if s.dashed {
            let (dash, gap) = ((6.0 * scale) as u32, (4.0 * scale) as u32);
            chart.draw_series(DashedLineSeries::new(pts, dash, gap, style))
        } else {
            chart.draw_series(LineSeries::new(pts, style))
        };
        // A dashed line's key is two short dashes, a solid line's two touching ones.
        let gap = if s.dashed { 4 } else { 0 };
        drawn.map_err(e)?.label(&s.label).legend(move |(x, y)| {
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (10 - gap / 2, 0)], style)
                + PathElement::new(vec![(10 + gap / 2, 0), (20, 0)], style)
        });
        chart
            .draw_series(s.points.iter().filter(|p| p.3 > p.2).map(|p| {
                ErrorBar::new_vertical(
                    p.0,
                    p.2,
                    p.1,
                    p.3,
                    c.stroke_width((1.0 * scale) as u32),
                    (6.0 * scale) as u32,
                )
            }))
            .map_err(e)?;
        // A model's curve marks its measured points: a learning curve over finished runs has
        // only a few, and the line between them is not measured.
        if !s.dashed {
            chart
                .draw_series(
                    s.points
                        .iter()
                        .map(|p| Circle::new((p.0, p.1), (3.0 * scale) as u32, c.filled())),
                )
                .map_err(e)?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(font(13.0))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// Grouped bars with error bars: `groups` on the x axis (e.g. training data), one bar per
/// `series` entry (e.g. evaluation set) in each group. Values are (mean, lo, hi).
pub fn grouped_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    groups: &[String],
    series: &[BarSeries],
    scale: f64,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing {title}: {e:?}");
    root.fill(&WHITE).map_err(e)?;
    // From zero: a bar's length is its value (a cut axis would exaggerate differences).
    let hi = series
        .iter()
        .flat_map(|s| s.1.iter())
        .fold(0f64, |m, &(_, _, h)| m.max(h));
    let (y0, y1) = (0.0, hi * 1.15 + 1e-9);
    let font = |s: f64| ("sans-serif", (s * scale) as u32).into_font();
    let n = series.len() as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(title, font(20.0))
        .margin((12.0 * scale) as u32)
        .x_label_area_size((44.0 * scale) as u32)
        .y_label_area_size((64.0 * scale) as u32)
        .build_cartesian_2d(-0.5f64..(groups.len() as f64 - 0.5), y0..y1)
        .map_err(e)?;
    let names = groups.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len())
        .x_label_formatter(&move |x| {
            names
                .get(x.round() as usize)
                .filter(|_| (x - x.round()).abs() < 1e-6)
                .cloned()
                .unwrap_or_default()
        })
        .y_desc(y_label)
        .label_style(font(13.0))
        .axis_desc_style(font(15.0))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    let width = 0.8 / n;
    for (si, (label, vals)) in series.iter().enumerate() {
        let c = COLORS[si % COLORS.len()];
        let off = -0.4 + width * (si as f64 + 0.5);
        chart
            .draw_series(vals.iter().enumerate().map(|(g, &(m, _, _))| {
                Rectangle::new(
                    [
                        (g as f64 + off - width * 0.45, y0),
                        (g as f64 + off + width * 0.45, m),
                    ],
                    c.mix(0.85).filled(),
                )
            }))
            .map_err(e)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
        chart
            .draw_series(vals.iter().enumerate().map(|(g, &(m, l, h))| {
                ErrorBar::new_vertical(
                    g as f64 + off,
                    l,
                    m,
                    h,
                    BLACK.stroke_width((1.5 * scale) as u32),
                    (8.0 * scale) as u32,
                )
            }))
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(font(13.0))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// Render a figure function to an SVG file (atomically) and to a PNG at `dpi`.
pub fn save_svg(
    path: &Path,
    size: (u32, u32),
    draw: impl Fn(&DrawingArea<SVGBackend, Shift>, f64) -> Result<()>,
) -> Result<()> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(&root, 1.0)?;
    }
    crate::io::write_bytes(path, svg.as_bytes())
}

/// PNG at print resolution: the same figure drawn `scale` times larger.
pub fn save_png(
    path: &Path,
    size: (u32, u32),
    scale: f64,
    draw: impl Fn(&DrawingArea<BitMapBackend, Shift>, f64) -> Result<()>,
) -> Result<()> {
    let (w, h) = (
        (size.0 as f64 * scale) as u32,
        (size.1 as f64 * scale) as u32,
    );
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(&root, scale)?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).ok_or_else(|| anyhow!("PNG buffer size"))?;
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    crate::io::write_bytes(path, &bytes)
}

/// An SVG figure that displays inline in an evcxr (Rust Jupyter) notebook.
pub struct Svg(pub String);

impl Svg {
    /// Called by evcxr to show the value of a cell.
    pub fn evcxr_display(&self) {
        println!(
            "EVCXR_BEGIN_CONTENT image/svg+xml\n{}\nEVCXR_END_CONTENT",
            self.0
        );
    }
}

/// Draw a figure function to an in-memory SVG.
pub fn to_svg(
    size: (u32, u32),
    draw: impl Fn(&DrawingArea<SVGBackend, Shift>, f64) -> Result<()>,
) -> Result<Svg> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        draw(&root, 1.0)?;
    }
    Ok(Svg(svg))
}

//! An RGB pixel buffer with just what the plots draw — filled rectangles, thick lines and text
//! in the 5×7 font — saved as PNG with the `png` crate.

use std::path::Path;

use super::font;

pub type Rgb = [u8; 3];

pub const WHITE: Rgb = [255, 255, 255];
pub const BLACK: Rgb = [0, 0, 0];
pub const GREY: Rgb = [210, 210, 210];

pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Self {
        Canvas { width, height, pixels: vec![255; width * height * 3] }
    }

    pub fn set(&mut self, x: i64, y: i64, color: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let at = (y as usize * self.width + x as usize) * 3;
            self.pixels[at..at + 3].copy_from_slice(&color);
        }
    }

    pub fn fill(&mut self, x: i64, y: i64, w: i64, h: i64, color: Rgb) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy, color);
            }
        }
    }

    /// A line `thickness` pixels wide from (x0, y0) to (x1, y1).
    pub fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), thickness: i64, color: Rgb) {
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as i64;
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let (x, y) = ((x0 + (x1 - x0) * t).round() as i64, (y0 + (y1 - y0) * t).round() as i64);
            self.fill(x - thickness / 2, y - thickness / 2, thickness, thickness, color);
        }
    }

    /// `text` with its top left corner at (x, y), each font pixel `scale` pixels wide.
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: i64, color: Rgb) {
        for (i, c) in text.chars().enumerate() {
            let left = x + (i * font::ADVANCE) as i64 * scale;
            for row in 0..font::HEIGHT {
                for col in 0..5 {
                    if font::lit(c, col, row) {
                        self.fill(left + col as i64 * scale, y + row as i64 * scale, scale, scale, color);
                    }
                }
            }
        }
    }

    /// The width `text` takes at `scale`.
    pub fn text_width(text: &str, scale: i64) -> i64 {
        (text.chars().count() * font::ADVANCE) as i64 * scale
    }

    pub fn save_png(&self, path: &Path) -> std::io::Result<()> {
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut encoder = png::Encoder::new(file, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
        writer.write_image_data(&self.pixels).map_err(std::io::Error::other)
    }
}

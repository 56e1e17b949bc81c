//! How the broadcast forward pass groups an image's output pixels into kernel tiles.
//!
//! A tile runs one window of kernel rows and columns for all its pixels, so the taps it skips
//! must read only padding for every one of them. Runs of consecutive pixels (the plain plan)
//! skip only the kernel rows that all their rows miss. In a padded layer the border pixels
//! need fewer taps than the rest: tiles that follow the border (the interior rectangle, each
//! border row, each border column of the interior rows) skip every tap that reads padding.
//! Backward-data of an unpadded 3x3 layer runs as a forward pass with padding 2, where 15% of
//! the multiply-adds read padding (`mnist.c2`; 9% with the plain plan's row skipping, 6% with
//! the border plan, its tiles' unused pixels included); 8x8 images with padding 1 spend 16%
//! there (10% with the border plan, against 13% with the plain one, on 6-pixel tiles).
//! The plan is chosen by its multiply-adds, and is a function of the shape alone, as the
//! sums are: each pixel's sum runs over its tile's window.

use crate::broadcast::PIXELS_MAX;
use crate::direct::Padded;

/// The pixel tiles of one image of a broadcast forward pass (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PixelTiles {
    padded: Padded,
    stride: [usize; 2],
    dilation: [usize; 2],
    /// Pixels per tile.
    tile: usize,
    /// The output rows and columns whose windows read no padding, and the tile counts that
    /// follow from them, when the tiles follow the border; `None` for runs of consecutive
    /// pixels.
    interior: Option<(Interior, Layout)>,
}

/// The output rows `rows[0]..rows[1]` and columns `cols[0]..cols[1]` that read every kernel
/// row and column (empty ranges at 0 where there are none). The border plan's tiles cover,
/// in order: this rectangle, each other row (whole), then each other column of these rows.
#[derive(Debug, Clone, Copy)]
struct Interior {
    rows: [usize; 2],
    cols: [usize; 2],
}

/// The border plan's tiles: `inner` for the interior, `row_tiles` for each of `rows` border
/// rows, `col_tiles` for each of `cols` border columns (of the interior rows).
#[derive(Debug, Clone, Copy)]
struct Layout {
    inner: usize,
    rows: usize,
    row_tiles: usize,
    cols: usize,
    col_tiles: usize,
}

/// A rectangle of output pixels that consecutive tiles cover, row by row, and the window
/// they run.
#[derive(Debug, Clone, Copy)]
struct Rect {
    rows: [usize; 2],
    cols: [usize; 2],
    window: [[usize; 2]; 2],
}

impl Rect {
    fn width(&self) -> usize {
        self.cols[1] - self.cols[0]
    }

    fn area(&self) -> usize {
        (self.rows[1] - self.rows[0]) * self.width()
    }
}

impl PixelTiles {
    /// The cheaper plan for `padded`'s output at this stride and dilation, `tile` pixels per
    /// tile: the one with fewer multiply-adds in all (the plain plan on a tie), and its cost
    /// ([`PixelTiles::taps_run`]).
    pub(crate) fn cheapest(
        padded: Padded,
        stride: [usize; 2],
        dilation: [usize; 2],
        tile: usize,
    ) -> (Self, usize) {
        let plain = Self {
            padded,
            stride,
            dilation,
            tile,
            interior: None,
        };
        let border = plain.border_plan();
        let (plain_cost, border_cost) = (plain.taps_run(), border.taps_run());
        if border_cost < plain_cost {
            (border, border_cost)
        } else {
            (plain, plain_cost)
        }
    }

    /// Whether tile `j` covers pixels `j * tile ..` in order (the plain plan): written to
    /// consecutive rows, its tiles lie in the image's pixel order.
    pub(crate) fn in_pixel_order(&self) -> bool {
        self.interior.is_none()
    }

    /// Tiles in the image.
    pub(crate) fn count(&self) -> usize {
        match self.interior {
            None => self.pixels().div_ceil(self.tile),
            Some((_, l)) => l.inner + l.rows * l.row_tiles + l.cols * l.col_tiles,
        }
    }

    /// Tile `j`: fills each pixel's window corner in the padded image (`offs`) and its index
    /// in the image (`dst`), the first `tile` of each, and returns the window of kernel rows
    /// and columns to run. Pixels past a tile's last repeat it.
    pub(crate) fn tile(&self, j: usize, offs: &mut [usize], dst: &mut [usize]) -> [[usize; 2]; 2] {
        let (rect, first) = match self.interior {
            None => {
                let d = &self.padded;
                let first = j * self.tile;
                let last = (first + self.tile).min(self.pixels()) - 1;
                let rows = [first / d.out_w, last / d.out_w];
                let rect = Rect {
                    rows: [0, d.out_h],
                    cols: [0, d.out_w],
                    window: [self.rows_read(rows), self.cols_read([0, d.out_w - 1])],
                };
                (rect, first)
            }
            Some((i, l)) => {
                let (rect, t) = self.locate(i, l, j);
                (rect, t * self.tile)
            }
        };
        let d = &self.padded;
        let [sh, sw] = self.stride;
        let last = rect.area() - 1;
        for p in 0..self.tile {
            let i = (first + p).min(last);
            let oh = rect.rows[0] + i / rect.width();
            let ow = rect.cols[0] + i % rect.width();
            offs[p] = oh * sh * d.xw + ow * sw;
            dst[p] = oh * d.out_w + ow;
        }
        rect.window
    }

    /// Where tile `j * tile + p`'s pixel lies when the tiles are laid out one after the
    /// other (`tile` rows each): the row of pixel `(oh, ow)` there, for a plan not
    /// [`in_pixel_order`](Self::in_pixel_order).
    pub(crate) fn tile_row(&self, oh: usize, ow: usize) -> usize {
        let (i, l) = self.interior.expect("tile_row: tiles in pixel order");
        let ([r0, r1], [c0, c1]) = (i.rows, i.cols);
        let p = self.tile;
        if !(r0..r1).contains(&oh) {
            let row = if oh < r0 { oh } else { oh - (r1 - r0) };
            (l.inner + row * l.row_tiles) * p + ow
        } else if (c0..c1).contains(&ow) {
            (oh - r0) * (c1 - c0) + (ow - c0)
        } else {
            let col = if ow < c0 { ow } else { ow - (c1 - c0) };
            (l.inner + l.rows * l.row_tiles + col * l.col_tiles) * p + (oh - r0)
        }
    }

    fn pixels(&self) -> usize {
        self.padded.out_h * self.padded.out_w
    }

    fn rows_read(&self, rows: [usize; 2]) -> [usize; 2] {
        self.padded
            .kernel_rows(rows, self.stride[0], self.dilation[0])
    }

    fn cols_read(&self, cols: [usize; 2]) -> [usize; 2] {
        self.padded
            .kernel_cols(cols, self.stride[1], self.dilation[1])
    }

    /// This geometry's border plan.
    fn border_plan(&self) -> Self {
        let interior = self.interior();
        Self {
            interior: Some((interior, self.layout(interior))),
            ..*self
        }
    }

    /// The rows and columns whose windows read every kernel row and column.
    fn interior(&self) -> Interior {
        let d = &self.padded;
        // The outputs reading every tap form one run: the first tap reads real input from
        // some output on, the last up to some output.
        let span = |n: usize, full: &dyn Fn(usize) -> bool| match (0..n).find(|&o| full(o)) {
            Some(a) => [a, (a..n).take_while(|&o| full(o)).count() + a],
            None => [0, 0],
        };
        Interior {
            rows: span(d.out_h, &|o| self.rows_read([o, o]) == [0, d.kh]),
            cols: span(d.out_w, &|o| self.cols_read([o, o]) == [0, d.kw]),
        }
    }

    /// How many tiles the border plan gives each kind of rectangle.
    fn layout(&self, i: Interior) -> Layout {
        let d = &self.padded;
        let (inner_h, inner_w) = (i.rows[1] - i.rows[0], i.cols[1] - i.cols[0]);
        Layout {
            inner: (inner_h * inner_w).div_ceil(self.tile),
            rows: d.out_h - inner_h,
            row_tiles: d.out_w.div_ceil(self.tile),
            // No interior rows: the border rows are all the rows, and no column is left.
            cols: if inner_h > 0 { d.out_w - inner_w } else { 0 },
            col_tiles: inner_h.div_ceil(self.tile),
        }
    }

    /// The rectangle of the border plan that tile `j` lies in, and `j`'s index among its
    /// tiles.
    fn locate(&self, i: Interior, l: Layout, j: usize) -> (Rect, usize) {
        let d = &self.padded;
        let ([r0, r1], [c0, c1]) = (i.rows, i.cols);
        if j < l.inner {
            let window = [self.rows_read([r0, r1 - 1]), self.cols_read([c0, c1 - 1])];
            let rect = Rect {
                rows: i.rows,
                cols: i.cols,
                window,
            };
            return (rect, j);
        }
        let j = j - l.inner;
        if j < l.rows * l.row_tiles {
            let row = j / l.row_tiles;
            let oh = if row < r0 { row } else { row + (r1 - r0) };
            let window = [self.rows_read([oh, oh]), self.cols_read([0, d.out_w - 1])];
            let rect = Rect {
                rows: [oh, oh + 1],
                cols: [0, d.out_w],
                window,
            };
            return (rect, j % l.row_tiles);
        }
        let j = j - l.rows * l.row_tiles;
        let col = j / l.col_tiles;
        let ow = if col < c0 { col } else { col + (c1 - c0) };
        let window = [self.rows_read([r0, r1 - 1]), self.cols_read([ow, ow])];
        let rect = Rect {
            rows: i.rows,
            cols: [ow, ow + 1],
            window,
        };
        (rect, j % l.col_tiles)
    }

    /// Kernel taps run per input channel over all the tiles, unused pixels included: the
    /// plan's cost.
    fn taps_run(&self) -> usize {
        let (mut offs, mut dst) = ([0; PIXELS_MAX], [0; PIXELS_MAX]);
        (0..self.count())
            .map(|j| {
                let [[k0, k1], [j0, j1]] = self.tile(j, &mut offs, &mut dst);
                (k1 - k0) * (j1 - j0)
            })
            .sum::<usize>()
            * self.tile
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Conv2dParams, Conv2dShape};

    /// The plain and the border plan of a layer.
    fn plans(s: &Conv2dShape, tile: usize) -> [PixelTiles; 2] {
        let p = s.params;
        let plain = PixelTiles {
            padded: Padded::new(s),
            stride: p.stride,
            dilation: p.dilation,
            tile,
            interior: None,
        };
        let border = plain.border_plan();
        [plain, border]
    }

    fn shape(input: [usize; 4], k: [usize; 2], p: Conv2dParams) -> Conv2dShape {
        Conv2dShape::new(input, [4, input[1], k[0], k[1]], p).expect("valid test shape")
    }

    #[test]
    fn every_pixel_is_in_a_tile_whose_window_holds_its_real_taps() {
        let d = Conv2dParams::default();
        let shapes = [
            shape([1, 2, 24, 24], [3, 3], d.with_padding(2)),
            shape([1, 2, 8, 8], [3, 3], d.with_padding(1)),
            shape([1, 2, 7, 5], [3, 3], d.with_padding(1).with_stride(2)),
            shape([1, 2, 9, 11], [3, 2], d.with_padding(2).with_dilation(2)),
            shape([1, 2, 3, 3], [3, 3], d.with_padding(2)),
            shape([1, 2, 10, 10], [5, 5], d),
        ];
        for s in &shapes {
            for tile in [6, 12, 25] {
                for plan in plans(s, tile) {
                    let (out_h, out_w) = (s.out_h(), s.out_w());
                    let mut seen = vec![false; out_h * out_w];
                    let (mut offs, mut dst) = ([0; PIXELS_MAX], [0; PIXELS_MAX]);
                    for j in 0..plan.count() {
                        let [rows, cols] = plan.tile(j, &mut offs, &mut dst);
                        for p in 0..tile {
                            let (oh, ow) = (dst[p] / out_w, dst[p] % out_w);
                            seen[dst[p]] = true;
                            let [sh, sw] = s.params.stride;
                            assert_eq!(offs[p], oh * sh * plan.padded.xw + ow * sw);
                            let real_rows = plan.rows_read([oh, oh]);
                            let real_cols = plan.cols_read([ow, ow]);
                            assert!(
                                rows[0] <= real_rows[0] && real_rows[1] <= rows[1],
                                "{s:?} tile {tile}: pixel ({oh}, {ow}) reads rows {real_rows:?}, outside {rows:?}"
                            );
                            assert!(
                                cols[0] <= real_cols[0] && real_cols[1] <= cols[1],
                                "{s:?} tile {tile}: pixel ({oh}, {ow}) reads columns {real_cols:?}, outside {cols:?}"
                            );
                            if !plan.in_pixel_order() {
                                assert_eq!(
                                    plan.tile_row(oh, ow) / tile,
                                    j,
                                    "{s:?}: pixel ({oh}, {ow})"
                                );
                            }
                        }
                    }
                    assert!(
                        seen.iter().all(|&v| v),
                        "{s:?} tile {tile}: a pixel in no tile"
                    );
                }
            }
        }
    }

    #[test]
    fn border_tiles_run_where_they_skip_more_padding() {
        // `mnist.c2`'s backward-data as a forward pass (padding 2): 5508 taps against 5688
        // per channel, the 5184 that read real input plus the tiles' unused pixels.
        let d = Conv2dParams::default();
        let rotated = shape([1, 64, 24, 24], [3, 3], d.with_padding(2));
        let [plain, border] = plans(&rotated, 12);
        assert_eq!((plain.taps_run(), border.taps_run()), (5688, 5508));
        let (chosen, _) = PixelTiles::cheapest(plain.padded, [1, 1], [1, 1], 12);
        assert!(!chosen.in_pixel_order());
        // Unpadded: one rectangle, the same tiles; the plain plan stays.
        let unpadded = shape([1, 32, 26, 26], [3, 3], d);
        let [plain, border] = plans(&unpadded, 12);
        assert_eq!(plain.taps_run(), border.taps_run());
        assert!(
            PixelTiles::cheapest(plain.padded, [1, 1], [1, 1], 12)
                .0
                .in_pixel_order()
        );
    }
}

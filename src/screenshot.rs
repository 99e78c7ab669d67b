//! A guest's screen as PNG. libvirt hands QEMU's screendump over as PNG
//! (QEMU 7.1 and later) or as a binary PPM (P6): a PNG is checked by
//! decoding its header, a PPM decoded and written as PNG with the png
//! crate. Pure: bytes in, bytes out.

use crate::error::{Error, Result};

/// A decoded frame: width, height, RGB bytes.
#[derive(Debug, PartialEq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// Parse a binary PPM (P6, maxval 255) as QEMU writes it.
pub fn parse_ppm(b: &[u8]) -> Result<Frame> {
    let bad = |why: &str| Error::other(format!("the screen dump is not a PPM image: {why}"));
    if !b.starts_with(b"P6") {
        return Err(bad("no P6 magic"));
    }
    // Four tokens (magic, width, height, maxval), comments allowed, then
    // exactly one whitespace byte before the pixels.
    let mut tokens = Vec::new();
    let mut i = 0;
    while tokens.len() < 4 {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'#') {
            if b[i] == b'#' {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            } else {
                i += 1;
            }
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        if start == i {
            return Err(bad("a short header"));
        }
        tokens
            .push(std::str::from_utf8(&b[start..i]).map_err(|_| bad("a header that is not text"))?);
    }
    i += 1;
    let num = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| bad("a size that is not a number"))
    };
    let (width, height, max) = (num(tokens[1])?, num(tokens[2])?, num(tokens[3])?);
    if max != 255 || width == 0 || height == 0 {
        return Err(bad("not 8-bit, or empty"));
    }
    let len = width as usize * height as usize * 3;
    let rgb = b
        .get(i..i + len)
        .ok_or_else(|| bad("fewer pixels than its size says"))?
        .to_vec();
    Ok(Frame { width, height, rgb })
}

/// A PNG of the dump, with its width and height.
pub fn png_of(mime: &str, bytes: Vec<u8>) -> Result<(u32, u32, Vec<u8>)> {
    match mime {
        "image/png" => {
            let r = png::Decoder::new(&bytes[..])
                .read_info()
                .map_err(|e| Error::other("the screen dump is not a valid PNG").caused_by(e))?;
            let (w, h) = (r.info().width, r.info().height);
            Ok((w, h, bytes))
        }
        "image/x-portable-pixmap" => {
            let f = parse_ppm(&bytes)?;
            Ok((f.width, f.height, to_png(&f)?))
        }
        other => Err(Error::other(format!(
            "the hypervisor gave the screen as {other}, neither PNG nor PPM"
        ))),
    }
}

pub fn to_png(f: &Frame) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, f.width, f.height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let err = |e: png::EncodingError| Error::other("cannot encode the PNG").caused_by(e);
    let mut w = enc.write_header().map_err(err)?;
    w.write_image_data(&f.rgb).map_err(err)?;
    w.finish().map_err(err)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ppm_becomes_the_same_picture_in_png() {
        let mut ppm = b"P6\n# QEMU\n2 1\n255\n".to_vec();
        ppm.extend([255, 0, 0, 0, 0, 255]);
        let f = parse_ppm(&ppm).unwrap();
        assert_eq!((f.width, f.height), (2, 1));
        let png = to_png(&f).unwrap();
        let mut dec = png::Decoder::new(&png[..]).read_info().unwrap();
        let mut buf = vec![0; dec.output_buffer_size()];
        let info = dec.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (2, 1));
        assert_eq!(&buf[..6], &[255, 0, 0, 0, 0, 255]);
    }

    #[test]
    fn a_png_passes_as_it_is_and_others_are_refused() {
        let f = Frame {
            width: 3,
            height: 2,
            rgb: vec![7; 18],
        };
        let png = to_png(&f).unwrap();
        assert_eq!(png_of("image/png", png.clone()).unwrap(), (3, 2, png));
        assert!(png_of("image/png", b"not a png".to_vec()).is_err());
        assert!(png_of("image/jpeg", vec![]).is_err());
        let mut ppm = b"P6 3 2 255\n".to_vec();
        ppm.extend([7; 18]);
        assert_eq!(png_of("image/x-portable-pixmap", ppm).unwrap().0, 3);
    }

    #[test]
    fn broken_dumps_are_refused() {
        for bad in [
            &b"P5\n1 1\n255\n\0"[..],
            b"P6\n2 2\n255\n\0\0\0",
            b"P6\n1 1\n65535\n\0\0\0\0\0\0",
            b"P6\n",
        ] {
            assert!(parse_ppm(bad).is_err(), "{bad:?}");
        }
    }
}

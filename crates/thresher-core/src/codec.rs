//! Little-endian encoding helpers shared by the on-disk formats (score files, checkpoints):
//! a growable writer, a bounds-checked reader that never panics on hostile input, and the
//! CRC-32 trailer every file ends with.

/// Appends little-endian values to a byte vector.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// A length-prefixed string.
    pub(crate) fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.bytes(s.as_bytes());
    }
    /// A length-prefixed array.
    pub(crate) fn u64s(&mut self, v: &[u64]) {
        self.u64(v.len() as u64);
        v.iter()
            .for_each(|x| self.buf.extend_from_slice(&x.to_le_bytes()));
    }
    pub(crate) fn u32s(&mut self, v: &[u32]) {
        self.u64(v.len() as u64);
        v.iter()
            .for_each(|x| self.buf.extend_from_slice(&x.to_le_bytes()));
    }
    pub(crate) fn f32s(&mut self, v: &[f32]) {
        self.u64(v.len() as u64);
        v.iter()
            .for_each(|x| self.buf.extend_from_slice(&x.to_le_bytes()));
    }
    pub(crate) fn u8s(&mut self, v: &[u8]) {
        self.u64(v.len() as u64);
        self.bytes(v);
    }
    /// Appends the CRC-32 of everything written so far and returns the bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let crc = crc32fast::hash(&self.buf);
        self.u32(crc);
        self.buf
    }
}

/// Reads little-endian values; every read returns None past the end instead of panicking.
pub(crate) struct Reader<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8], at: usize) -> Self {
        Reader { b, at }
    }
    pub(crate) fn done(&self) -> bool {
        self.at == self.b.len()
    }
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.take(2)
            .map(|s| u16::from_le_bytes(s.try_into().unwrap()))
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|s| u32::from_le_bytes(s.try_into().unwrap()))
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|s| u64::from_le_bytes(s.try_into().unwrap()))
    }
    pub(crate) fn f64(&mut self) -> Option<f64> {
        self.take(8)
            .map(|s| f64::from_le_bytes(s.try_into().unwrap()))
    }
    pub(crate) fn str(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn array<T>(&mut self, size: usize, f: impl Fn(&[u8]) -> T) -> Option<Vec<T>> {
        self.array_max(size, usize::MAX, f)
    }
    /// An array of at most `max` elements: a longer stored length is refused before anything
    /// is allocated (besides being bounded by the bytes left).
    fn array_max<T>(&mut self, size: usize, max: usize, f: impl Fn(&[u8]) -> T) -> Option<Vec<T>> {
        let n = usize::try_from(self.u64()?).ok()?;
        if n > max {
            return None;
        }
        let raw = self.take(n.checked_mul(size)?)?;
        Some(raw.chunks_exact(size).map(f).collect())
    }
    /// The stored length of the next array, without consuming it.
    pub(crate) fn peek_len(&self) -> Option<u64> {
        let mut r = Reader::new(self.b, self.at);
        r.u64()
    }
    pub(crate) fn u64s_max(&mut self, max: usize) -> Option<Vec<u64>> {
        self.array_max(8, max, |c| u64::from_le_bytes(c.try_into().unwrap()))
    }
    pub(crate) fn f32s_max(&mut self, max: usize) -> Option<Vec<f32>> {
        self.array_max(4, max, |c| f32::from_le_bytes(c.try_into().unwrap()))
    }
    pub(crate) fn u32s(&mut self) -> Option<Vec<u32>> {
        self.array(4, |c| u32::from_le_bytes(c.try_into().unwrap()))
    }
    pub(crate) fn f32s(&mut self) -> Option<Vec<f32>> {
        self.array(4, |c| f32::from_le_bytes(c.try_into().unwrap()))
    }
    pub(crate) fn u8s(&mut self) -> Option<Vec<u8>> {
        self.array(1, |c| c[0])
    }
}

/// Splits off and checks the CRC-32 trailer; returns the body.
pub(crate) fn check_crc(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() < 4 {
        return None;
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    (crc32fast::hash(body) == u32::from_le_bytes(crc.try_into().unwrap())).then_some(body)
}

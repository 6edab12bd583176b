//! Comments as nft stores them: TLV userdata on rules and set elements.

use crate::error::NftError;
use nftnl::nftnl_sys as sys;

/// TLV userdata holding one comment (type 0), as nft writes it for rules and set elements.
pub(super) fn comment_udata(comment: &str) -> Result<Vec<u8>, NftError> {
    let bytes = comment.as_bytes();
    let len = bytes.len() + 1;
    if len > sys::NFTNL_UDATA_COMMENT_MAXLEN as usize || bytes.contains(&0) {
        return Err(NftError::Encode(format!(
            "comment {comment:?} is longer than 127 bytes or holds a NUL"
        )));
    }
    let mut out = vec![0u8, len as u8];
    out.extend_from_slice(bytes);
    out.push(0);
    Ok(out)
}

/// The comment in TLV userdata, if there is one (type 0).
pub(crate) fn comment_from_udata(mut udata: &[u8]) -> Option<String> {
    while udata.len() >= 2 {
        let (kind, len) = (udata[0], usize::from(udata[1]));
        let value = udata.get(2..2 + len)?;
        if kind == 0 {
            let text = value.strip_suffix(&[0]).unwrap_or(value);
            return String::from_utf8(text.to_vec()).ok();
        }
        udata = &udata[2 + len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_round_trip_through_udata() {
        let u = comment_udata("web-to-redis").unwrap();
        assert_eq!(u[0], 0);
        assert_eq!(comment_from_udata(&u).as_deref(), Some("web-to-redis"));
        assert!(comment_udata(&"x".repeat(200)).is_err());
    }
}

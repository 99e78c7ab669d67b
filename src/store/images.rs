//! Image records: a named image is one or more content-addressed files.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::error::{Context, Error, Kind, Result};
use crate::store::Store;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ImageFile {
    pub file: String,
    pub sha256: String,
    pub size: u64,
    pub format: String,
    pub virtual_size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageRecord {
    pub name: String,
    pub source: String,
    pub created_at: String,
    pub files: Vec<ImageFile>,
    /// Machines whose disks or kernel come from this image.
    pub used_by: Vec<String>,
}

impl Store {
    pub fn add_image(&mut self, name: &str, source: &str, files: &[ImageFile]) -> Result<()> {
        let tx = self.write()?;
        let r = tx.execute(
            "INSERT INTO images (name, source, created_at) VALUES (?1, ?2, ?3)",
            params![name, source, crate::time::rfc3339_now()],
        );
        match r {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(Error::conflict(format!(
                    "image {name:?} already exists (remove it first with `creature image rm {name}`)"
                )))
            }
            Err(e) => return Err(Error::other("cannot record the image").caused_by(e)),
        }
        let id = tx.last_insert_rowid();
        for f in files {
            tx.execute(
                "INSERT INTO image_files (image_id, file, sha256, size, format, virtual_size)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    f.file,
                    f.sha256,
                    f.size as i64,
                    f.format,
                    f.virtual_size as i64
                ],
            )
            .context(Kind::Other, || {
                format!("cannot record file {} of image {name:?}", f.file)
            })?;
        }
        tx.commit()
            .context(Kind::Other, || "cannot commit the image".into())
    }

    pub fn image(&self, name: &str) -> Result<Option<ImageRecord>> {
        let row: Option<(i64, String, String)> = self
            .conn
            .query_row(
                "SELECT id, source, created_at FROM images WHERE name = ?1",
                params![name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.corrupt(e))?;
        let Some((id, source, created_at)) = row else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT file, sha256, size, format, virtual_size FROM image_files
                 WHERE image_id = ?1 ORDER BY file",
            )
            .map_err(|e| self.corrupt(e))?;
        let files = stmt
            .query_map(params![id], |r| {
                Ok(ImageFile {
                    file: r.get(0)?,
                    sha256: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                    format: r.get(3)?,
                    virtual_size: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(|e| self.corrupt(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.corrupt(e))?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT m.name FROM machine_images mi JOIN machines m ON m.id = mi.machine_id
                 WHERE mi.image_id = ?1 ORDER BY m.name",
            )
            .map_err(|e| self.corrupt(e))?;
        let used_by = stmt
            .query_map(params![id], |r| r.get(0))
            .map_err(|e| self.corrupt(e))?
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(|e| self.corrupt(e))?;
        Ok(Some(ImageRecord {
            name: name.to_string(),
            source,
            created_at,
            files,
            used_by,
        }))
    }

    /// The image pulled from this URL, if any.
    pub fn image_by_source(&self, source: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT name FROM images WHERE source = ?1",
                params![source],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.corrupt(e))
    }

    pub fn image_names(&self) -> Result<Vec<String>> {
        self.strings("SELECT name FROM images ORDER BY name")
    }

    /// Forget an image no machine uses. Returns the sha256 of files no other
    /// image still refers to (the caller deletes those blobs).
    pub fn remove_image(&mut self, name: &str) -> Result<Vec<String>> {
        let tx = self.write()?;
        let id: Option<i64> = tx
            .query_row(
                "SELECT id FROM images WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .context(Kind::StateCorrupt, || "cannot read images".into())?;
        let id = id.ok_or_else(|| {
            Error::not_found(format!(
                "image {name:?} not found (see `creature image list`)"
            ))
        })?;
        let users: Vec<String> = {
            let mut stmt = tx
                .prepare("SELECT m.name FROM machine_images mi JOIN machines m ON m.id = mi.machine_id WHERE mi.image_id = ?1 ORDER BY m.name")
                .context(Kind::StateCorrupt, || "cannot read image users".into())?;
            let rows = stmt
                .query_map(params![id], |r| r.get(0))
                .context(Kind::StateCorrupt, || "cannot read image users".into())?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
                .context(Kind::StateCorrupt, || "cannot read image users".into())?
        };
        if !users.is_empty() {
            return Err(Error::conflict(format!(
                "image {name:?} is used by {}; delete those machines first",
                users.join(", ")
            )));
        }
        let blobs: Vec<String> = {
            let mut stmt = tx
                .prepare(
                    "SELECT sha256 FROM image_files f WHERE image_id = ?1 AND NOT EXISTS
                     (SELECT 1 FROM image_files g WHERE g.sha256 = f.sha256 AND g.image_id != ?1)",
                )
                .context(Kind::StateCorrupt, || "cannot read image files".into())?;
            let rows = stmt
                .query_map(params![id], |r| r.get(0))
                .context(Kind::StateCorrupt, || "cannot read image files".into())?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
                .context(Kind::StateCorrupt, || "cannot read image files".into())?
        };
        tx.execute("DELETE FROM images WHERE id = ?1", params![id])
            .context(Kind::Other, || format!("cannot remove image {name:?}"))?;
        tx.commit()
            .context(Kind::Other, || "cannot commit the removal".into())?;
        Ok(blobs)
    }

    /// Record that a machine uses an image (once; recording it again is fine).
    pub fn use_image(&mut self, host: &str, machine: &str, image: &str) -> Result<()> {
        let ids: Option<(i64, i64)> = self
            .conn
            .query_row(
                "SELECT m.id, i.id FROM machines m, images i
                 WHERE m.host = ?1 AND m.name = ?2 AND i.name = ?3",
                params![host, machine, image],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.corrupt(e))?;
        let (m, i) = ids.ok_or_else(|| {
            Error::not_found(format!("machine {machine:?} or image {image:?} not found"))
        })?;
        self.conn
            .execute(
                "INSERT OR IGNORE INTO machine_images (machine_id, image_id) VALUES (?1, ?2)",
                params![m, i],
            )
            .map(|_| ())
            .context(Kind::Other, || {
                format!("cannot record that {machine:?} uses {image:?}")
            })
    }
}

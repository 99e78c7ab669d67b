//! `creature rescue` and `unrescue` (#11): boot a machine from a rescue
//! kernel and initramfs of the image cache, its own disks attached, and
//! back again.

use crate::backend::{Driver, RescueBoot};
use crate::cmd::Ctx;
use crate::error::{Error, Kind, Result};
use crate::names::{self, What};
use crate::store::{MachineRecord, Store};
use crate::template::schema::Source;

/// The image: --image, else the machine's template's `rescue` key, else `rescue`.
fn image_name(rec: &MachineRecord, given: Option<&str>) -> String {
    if let Some(g) = given {
        return g.to_string();
    }
    rec.template
        .as_deref()
        .and_then(|t| {
            let lib = crate::template::Library::new(None);
            crate::template::resolve(&lib, t, &[], crate::template::HostLimits::local()).ok()
        })
        .and_then(|r| r.template.rescue)
        .unwrap_or_else(|| "rescue".to_string())
}

fn boot_files(ctx: &Ctx, rec: &MachineRecord, image: &str) -> Result<RescueBoot> {
    names::check(What::Image, image)?;
    let sd = &ctx.global.state_dir;
    let mut store = Store::open(sd)?;
    let mut file = |f: &str| -> Result<String> {
        let src = Source {
            image: Some(image.to_string()),
            file: Some(f.to_string()),
            url: None,
            sha256: None,
            sha512: None,
            path: None,
            format: None,
        };
        crate::image::source::locate(&mut store, sd, rec.template.as_deref().unwrap_or("-"), &src, true)
            .map(|l| l.path.display().to_string())
            .map_err(|e| match e.kind() {
                Kind::NotFound => Error::not_found(format!(
                    "no rescue image {image:?} with a file {f} in the image cache: pass --image NAME, set the \
                     template key `rescue`, or import one named rescue (`creature image import vmlinuz initrd.img --name rescue`)"
                )),
                _ => e,
            })
    };
    Ok(RescueBoot {
        kernel: file("vmlinuz")?,
        initrd: file("initrd.img")?,
        image: image.to_string(),
    })
}

pub fn rescue(ctx: &Ctx, drv: &dyn Driver, rec: &MachineRecord, image: Option<&str>) -> Result<()> {
    if let Some(img) = drv.details(&rec.name)?.rescued {
        return Err(Error::conflict(format!(
            "machine {:?} is already rescued (from image {img}); `creature unrescue {}` first",
            rec.name, rec.name
        )));
    }
    let image = image_name(rec, image);
    let boot = boot_files(ctx, rec, &image)?;
    drv.rescue(&rec.name, &boot)?;
    ctx.say(&format!(
        "rescued {}: booted from image {image}, its own disks after a scratch disk (each moved up one: \
         vda is the guest's vdb, xvda its xvdb); `creature unrescue {}` boots it from them again",
        rec.name, rec.name
    ));
    Ok(())
}

pub fn unrescue(ctx: &Ctx, drv: &dyn Driver, rec: &MachineRecord) -> Result<()> {
    drv.unrescue(&rec.name)?;
    ctx.say(&format!(
        "unrescued {}: booted from its own disks",
        rec.name
    ));
    Ok(())
}

//! A memory cgroup for the steady-state mode of the broker benchmark.
//!
//! On a freshly booted virtual machine every page the guest touches for the first time costs
//! a fault in the hypervisor, so writing into new page-cache pages runs at a fraction of
//! memory speed (on the 2-core development VM: ~0.3 GB/s the first time, ~1.9 GB/s once pages
//! are recycled). A broker that has run for a while has a full page cache whose pages are
//! recycled, never new. Inside a memory cgroup filled by a warm-up file, the broker's and the
//! baseline's writes recycle pages the same way. Needs root and a memory controller (cgroup
//! v1 or v2).

use std::path::{Path, PathBuf};

pub(crate) struct MemoryCgroup {
    dir: PathBuf,
    parent: PathBuf,
}

impl MemoryCgroup {
    /// Creates a cgroup limited to `limit_mib` of memory.
    pub(crate) fn create(limit_mib: u64) -> anyhow::Result<Self> {
        let limit = (limit_mib << 20).to_string();
        let name = format!("fjord-bench-{}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/memory");
        let (parent, limit_file) = if v1.join("memory.limit_in_bytes").exists() {
            (v1.to_path_buf(), "memory.limit_in_bytes")
        } else {
            let v2 = Path::new("/sys/fs/cgroup");
            // Best effort: the root cgroup may already delegate the memory controller.
            let _ = std::fs::write(v2.join("cgroup.subtree_control"), "+memory");
            (v2.to_path_buf(), "memory.max")
        };
        let dir = parent.join(name);
        std::fs::create_dir(&dir)
            .map_err(|e| anyhow::anyhow!("creating cgroup {} (root needed): {e}", dir.display()))?;
        let cgroup = Self { dir, parent };
        std::fs::write(cgroup.dir.join(limit_file), limit)?;
        Ok(cgroup)
    }

    /// Moves process `pid` into the cgroup.
    pub(crate) fn enter(&self, pid: u32) -> anyhow::Result<()> {
        Ok(std::fs::write(
            self.dir.join("cgroup.procs"),
            pid.to_string(),
        )?)
    }

    /// Moves process `pid` back to the parent cgroup (its page cache stays charged here).
    pub(crate) fn leave(&self, pid: u32) -> anyhow::Result<()> {
        Ok(std::fs::write(
            self.parent.join("cgroup.procs"),
            pid.to_string(),
        )?)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let _ = self.leave(std::process::id());
        let _ = std::fs::remove_dir(&self.dir);
    }
}

//! The class: one submission per student in a directory, and shards of it.

use super::GradeError;
use crate::ioerr::IoError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One student's submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Student {
    /// As the class directory names it (extensions of a lone file dropped).
    pub name: String,
    /// `name` as one safe path component, for `students/<dir>/`.
    pub dir: String,
    /// The submission (a file or a directory).
    #[serde(skip)]
    pub path: PathBuf,
}

/// Extensions a one-file submission may carry; the student is the rest.
const SUBMISSION_EXTENSIONS: &[&str] = &[".patch", ".diff", ".tar.gz", ".tgz"];

fn student_name(file_name: &str, is_dir: bool) -> String {
    if is_dir {
        return file_name.to_string();
    }
    SUBMISSION_EXTENSIONS
        .iter()
        .find_map(|ext| file_name.strip_suffix(ext))
        .filter(|stem| !stem.is_empty())
        .unwrap_or(file_name)
        .to_string()
}

/// Every student of `dir`, sorted by name. Hidden entries, and `out` when it
/// lies inside `dir`, are skipped; two entries that would be the same student
/// are an error (the TA must choose).
pub fn discover(dir: &Path, out: Option<&Path>) -> Result<Vec<Student>, GradeError> {
    let out = out.and_then(|o| o.canonicalize().ok());
    let io = |source| {
        GradeError::Io(IoError {
            path: dir.to_path_buf(),
            source,
        })
    };
    let mut students: Vec<Student> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with('.') {
            continue;
        }
        // The class directory is the TA's: links in it are followed.
        let path = entry.path();
        if out.is_some() && path.canonicalize().ok() == out {
            continue;
        }
        let is_dir = path.is_dir();
        let name = student_name(&file_name, is_dir);
        let dir_name = crate::paths::component(&name);
        if let Some(other) = students.iter().find(|s| s.dir == dir_name) {
            return Err(GradeError::Class(format!(
                "{} and {} are both student `{}`: rename one",
                other.path.display(),
                path.display(),
                dir_name
            )));
        }
        students.push(Student {
            name,
            dir: dir_name,
            path,
        });
    }
    students.sort_by(|a, b| a.name.cmp(&b.name).then(a.dir.cmp(&b.dir)));
    if students.is_empty() {
        return Err(GradeError::Class(format!(
            "{} holds no submissions",
            dir.display()
        )));
    }
    Ok(students)
}

/// Shard `index` of `count` (1-based), e.g. `2/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, from 1.
    pub index: usize,
    /// How many shards in all.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}` is not a shard: write I/N with 1 <= I <= N, e.g. 2/8");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Round robin over the sorted class: deterministic, and every shard
    /// gets a similar share of early and late names.
    pub fn select<T: Clone>(&self, sorted: &[T]) -> Vec<T> {
        sorted
            .iter()
            .enumerate()
            .filter(|(i, _)| i % self.count == self.index - 1)
            .map(|(_, s)| s.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn students_from_files_and_folders_sorted() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("carol.patch"), "x").unwrap();
        std::fs::create_dir(d.path().join("alice")).unwrap();
        std::fs::write(d.path().join("bob.tar.gz"), "x").unwrap();
        std::fs::write(d.path().join("dave.diff"), "x").unwrap();
        std::fs::write(d.path().join(".DS_Store"), "x").unwrap();
        std::fs::write(d.path().join("Émile Zola.patch"), "x").unwrap();
        std::fs::create_dir(d.path().join("grades")).unwrap();
        let s = discover(d.path(), Some(&d.path().join("grades"))).unwrap();
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["alice", "bob", "carol", "dave", "Émile Zola"]);
        assert_eq!(s[4].dir, "_mile_Zola");
        assert!(s[1].path.ends_with("bob.tar.gz"));
    }

    #[test]
    fn the_same_student_twice_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("alice.patch"), "x").unwrap();
        std::fs::create_dir(d.path().join("alice")).unwrap();
        let e = discover(d.path(), None).unwrap_err().to_string();
        assert!(e.contains("both student `alice`"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        assert!(discover(empty.path(), None).is_err());
    }

    #[test]
    fn shards_parse_and_partition() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let class: Vec<u32> = (0..10).collect();
        let mut seen = Vec::new();
        for i in 1..=3 {
            let part = Shard { index: i, count: 3 }.select(&class);
            assert!(part.len() == 3 || part.len() == 4);
            // Deterministic: the same input gives the same shard.
            assert_eq!(part, Shard { index: i, count: 3 }.select(&class));
            seen.extend(part);
        }
        seen.sort();
        assert_eq!(seen, class);
        assert_eq!(Shard { index: 1, count: 1 }.select(&class), class);
    }
}

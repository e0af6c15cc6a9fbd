"""Your data: bring a dataset (a zip of class folders) or a set file from the browser; both are checked whole
before anything is kept, and kept only inside the store."""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from app.navigation import page as app_page
from app.samples import dataset as cached_dataset
from app.state import studio as get_studio
from app.widgets import labelled_grid, plain, show_image
from ddcore.data import DatasetCorruptError, uploads
from ddcore.platform.bridge import MAX_SET_UPLOAD_BYTES, SyntheticSetFileError

studio = get_studio()


def _take(upload: Any, verb: str, action: Callable[[Any], Any]) -> Any:
    """Run `action` on a newly chosen file once (not again on every rerun); a refusal is said with its reason."""
    if upload is None or st.session_state.get(f"data_took_{verb}") == upload.file_id:
        return None
    try:
        result = action(upload)
    except (DatasetCorruptError, SyntheticSetFileError, ValueError, OSError) as e:
        st.error(f"{plain(upload.name)} was not {verb}: {plain(str(e))}")
        return None
    st.session_state[f"data_took_{verb}"] = upload.file_id
    return result

st.title("Your data")
st.caption("Distil your own images: upload a zip of class folders and it appears in the dataset lists of Distill, "
           "Evaluate and Privacy (the Continual and NAS studies use the built-in datasets). "
           "Or import a set file made elsewhere (by DD Studio's CLI, or another Studio) to see and evaluate it here.")

left, right = st.columns(2, gap="large")
with left:
    st.subheader("A dataset")
    st.caption("Accepted: " + plain(uploads.LIMITS_TEXT) + ".")
    archive = st.file_uploader("Dataset (.zip)", type=["zip"], key="data_zip",
                               help="train/cats/1.png, train/dogs/7.jpg, … (a test/ folder is optional: without "
                                    "one, a fifth of each class is kept aside for testing)")
    with st.spinner("Checking every image…"):
        record = _take(archive, "added", lambda f: uploads.import_zip(f.getvalue(), f.name))
    if record is not None:
        st.success(f"Added **{plain(record.display_name)}**: {len(record.class_names)} classes, "
                   f"{record.train_images:,} training and {record.test_images:,} test images.")

with right:
    st.subheader("A set file")
    st.caption(f"Accepted: a DD Studio set file (.safetensors) up to {MAX_SET_UPLOAD_BYTES >> 20} MB, for a dataset "
               "this Studio has. Its checksum and contents are verified; nothing in it is ever executed.")
    set_file = st.file_uploader("Set file", type=["safetensors", "ddset"], key="data_set")
    run = _take(set_file, "imported", lambda f: studio.import_set(f.getvalue(), f.name))
    if run is not None:
        st.success(f"Imported as **{plain(run.name)}** ({run.method.upper()}, IPC {run.ipc}).")
        st.page_link(app_page("gallery.py"), label="Open it in the Gallery", icon=":material/photo_library:",
                     query_params={"run": run.id})

st.divider()
st.subheader("Uploaded datasets")
records = uploads.list_uploads()
if not records:
    st.info("None yet. Upload a zip above; it is kept in this Studio's store folder.")
for record in records:
    with st.container(border=True):
        c1, c2 = st.columns([4, 1])
        c1.markdown(f"**{plain(record.display_name)}** · `{record.name}` · {len(record.class_names)} classes · "
                    f"{record.train_images:,} training / {record.test_images:,} test images · "
                    f"{'grey' if record.channels == 1 else 'colour'}")
        c1.caption("Classes: " + plain(", ".join(record.class_names[:30]))
                   + (" …" if len(record.class_names) > 30 else ""))
        try:
            data = cached_dataset(record.name)
        except (DatasetCorruptError, OSError) as e:
            c1.warning(f"It cannot be read any more: {plain(str(e))}")
        else:
            rows = [list(ix[:8].tolist()) for ix in data.train.class_indices[:10]]
            flat = [i for r in rows for i in r]
            images = data.train.images[flat].permute(0, 2, 3, 1).numpy()
            labels = data.train.labels[flat].numpy()
            show_image(labelled_grid(images, labels, record.class_names, max_per_class=8, classes=range(min(10, len(record.class_names)))),
                       "Up to 8 training images of the first 10 classes")
        if c2.button("Delete", key=f"delete_upload_{record.name}",
                     help="Removes the dataset; runs distilled from it keep their images"):
            uploads.delete_upload(record.name)
            st.rerun()

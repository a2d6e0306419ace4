"""A photo tab through the whole app - upload, Gradio's decoding, the task, writing the results, download - against
the task alone: seconds per call on this machine, as a table.

    python -m benchmarks.bench_app [--sizes 1 11] [--repeats 2]

The photo is chelsea resized to each size (megapixels; at 11 MP its long side is 4062 px, under the 4096 px to which
the app shrinks larger uploads, so the app and the task alone work on the same photo), sent as a JPEG with
a mask of one square hole (bench_photos.hole) to /inpaint and, without a mask, to /translate, on the embedded
CIFAR-10 model, via gradio_client on an in-process server. Each figure is the best of --repeats calls.
"""

import argparse
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from gradio_client import Client, handle_file

import app
import synth
from benchmarks.bench_photos import best_of, hole, photo_of

MODEL = "cifar10-resnet20-l2-eps0.5"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=float, nargs="+", default=[1, 11], help="megapixels")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    app.demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    client, model, tmp = Client(app.demo.local_url, verbose=False), synth.load_model(MODEL), Path(tempfile.mkdtemp())
    print("| tab | photo | through the app (s) | the task alone (s) |\n|---|---|---|---|")
    for mp in args.sizes:
        im = photo_of(mp)
        im.save(tmp / "photo.jpg", quality=92)
        hole(im).save(tmp / "mask.png")
        photo = handle_file(str(tmp / "photo.jpg"))
        editor = {"background": photo, "layers": [], "composite": photo, "id": None}
        mask = handle_file(str(tmp / "mask.png"))
        runs = {
            "inpaint": (
                lambda: client.predict(editor=editor, uploaded_mask=mask, model_name=MODEL, api_name="/inpaint"),
                lambda: synth.inpaint(model, im, hole(im)),
            ),
            "translate": (
                lambda: client.predict(image=photo, target="dog", model_name=MODEL, api_name="/translate"),
                lambda: synth.translate(model, im, target="dog"),
            ),
        }
        for tab, (through_app, alone) in runs.items():
            t_app, t_task = (best_of(run, args.repeats, warm_up=False) for run in (through_app, alone))
            print(f"| {tab} | {mp:g} MP ({im.width}x{im.height}) | {t_app:.2f} | {t_task:.2f} |", flush=True)
    app.demo.close()


if __name__ == "__main__":
    main()

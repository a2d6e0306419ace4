"""The Space's entry point (python app.py [--share] [--host 0.0.0.0] [--port 7860]); the app is the `app` package."""

from app import main

if __name__ == "__main__":
    main()

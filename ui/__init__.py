"""The Gradio chat page: ``ui.app.serve()`` serves it, ``ui.app.build_app()`` builds it."""

"""Pictures and summaries of finished work: ROC/PR and loss plots, the HTML/markdown report and
the sweep summary. Reads files; imports neither training nor inference."""

// Light and dark: the system's preference until the user picks one with the toggle.
import { required } from "./elements";

type Theme = "light" | "dark";
const CHOICE = "modelway.theme";
const systemDark = window.matchMedia("(prefers-color-scheme: dark)");

function effectiveTheme(): Theme {
  const chosen = localStorage.getItem(CHOICE);
  if (chosen === "light" || chosen === "dark") return chosen;
  return systemDark.matches ? "dark" : "light";
}

export function setUpTheme(): void {
  const toggle = required<HTMLButtonElement>("theme-toggle");
  const apply = () => {
    const theme = effectiveTheme();
    document.documentElement.dataset.theme = theme;
    // The label names what a press does, so it is not also a pressed/unpressed toggle
    // (a screen reader would read "Light theme, pressed" in the dark theme).
    toggle.textContent = theme === "dark" ? "Light theme" : "Dark theme";
  };
  toggle.addEventListener("click", () => {
    localStorage.setItem(CHOICE, effectiveTheme() === "dark" ? "light" : "dark");
    apply();
  });
  systemDark.addEventListener("change", apply);
  apply();
}
